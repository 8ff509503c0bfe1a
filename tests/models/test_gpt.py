"""GPT: Hugging Face GPT-2 equivalence (both directions), the KV cache, generation and its filters."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from archlab.models.transformer import generation as gen
from archlab.models.transformer.attention import KVCache
from archlab.models.transformer.gpt import GPT, GPTConfig
from archlab.registry import create_model

TINY = {"vocab_size": 50, "max_len": 16, "num_layers": 2, "num_heads": 2, "embed_dim": 32, "dropout": 0.0}


def tiny_gpt(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **kw})).eval()


# ----------------------------------------------------------------------------------------------
# Hugging Face GPT-2


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=50, n_positions=16,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # move the LayerNorms and biases off their 1 / 0 init so their mapping is tested
        for name, p in model.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("hf_gpt2")
    model.save_pretrained(path)
    return model, path


def test_load_hf_gpt2_same_logits(hf_gpt2) -> None:
    from archlab.models.transformer.hf_gpt2 import load_hf_gpt2

    hf, path = hf_gpt2
    ours = load_hf_gpt2(path)
    assert ours.config.num_layers == 2 and ours.config.max_len == 16 and ours.config.activation == "gelu_tanh"
    x = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, out = hf(x).logits, ours(x)
    assert out.shape == (3, 16, 50)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # The math attention path gives the same numbers as the fused kernel.
    ours_math = load_hf_gpt2(path)
    for block in ours_math.blocks:
        block.self_attn.impl = "math"
    with torch.no_grad():
        torch.testing.assert_close(ours_math(x), ref, atol=1e-5, rtol=1e-5)


def test_kv_cache_token_by_token_equals_full_forward(hf_gpt2) -> None:
    from archlab.models.transformer.hf_gpt2 import load_hf_gpt2

    hf, path = hf_gpt2
    ours = load_hf_gpt2(path)
    x = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = hf(x).logits
        cache = KVCache(2)
        steps = [ours(x[:, :5], cache=cache)] + [ours(x[:, t:t + 1], cache=cache) for t in range(5, 12)]
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_save_hf_gpt2_round_trip(hf_gpt2, tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    from archlab.models.transformer.hf_gpt2 import load_hf_gpt2, save_hf_gpt2

    _, path = hf_gpt2
    ours = load_hf_gpt2(path)
    save_hf_gpt2(ours, tmp_path / "out")
    back, info = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    x = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(x).logits, ours(x), atol=1e-5, rtol=1e-5)
    again = load_hf_gpt2(tmp_path / "out")
    for (k, a), b in zip(ours.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_untied_round_trip(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    from archlab.models.transformer.hf_gpt2 import load_hf_gpt2, save_hf_gpt2

    ours = tiny_gpt(tie_weights=False, activation="gelu", ff_dim=48)
    save_hf_gpt2(ours, tmp_path)
    back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 50, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(back(x).logits, ours(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(load_hf_gpt2(tmp_path)(x), ours(x), atol=0, rtol=0)


def test_hf_config_errors(tmp_path) -> None:
    from archlab.models.transformer.hf_gpt2 import gpt2_config_from_hf, load_hf_gpt2, save_hf_gpt2
    from archlab.utils import ArchlabError

    base = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 50, "n_positions": 16}
    assert gpt2_config_from_hf(base)["ff_dim"] is None
    with pytest.raises(ArchlabError, match="not GPT-2"):
        gpt2_config_from_hf({**base, "model_type": "bert"})
    with pytest.raises(ArchlabError, match="add_cross_attention"):
        gpt2_config_from_hf({**base, "add_cross_attention": True})
    with pytest.raises(ArchlabError, match="activation_function"):
        gpt2_config_from_hf({**base, "activation_function": "swish"})
    with pytest.raises(ArchlabError, match="config.json"):
        load_hf_gpt2(tmp_path)
    with pytest.raises(ArchlabError, match="pos='rotary'"):
        save_hf_gpt2(tiny_gpt(pos="rotary"), tmp_path)


# ----------------------------------------------------------------------------------------------
# the model


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rotary"])
def test_cache_matches_full_forward_every_position_kind(pos: str) -> None:
    model = tiny_gpt(pos=pos, norm="rmsnorm" if pos == "rotary" else "layernorm")
    x = torch.randint(0, 50, (2, 16))
    with torch.no_grad():
        full = model(x)
        cache = KVCache(2)
        steps = [model(x[:, :1], cache=cache)] + [model(x[:, t:t + 3], cache=cache) for t in range(1, 16, 3)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_causal_future_tokens_do_not_change_the_past() -> None:
    model = tiny_gpt()
    x = torch.randint(0, 50, (1, 16))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 50
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_tied_weights_and_init() -> None:
    model = create_model("gpt_char", vocab_size=65)
    assert model.lm_head.weight is model.wte.weight
    assert model.config.max_len == 64 and model.config.dropout == 0.0
    n = sum(p.numel() for p in model.parameters())
    assert n == 65 * 128 + 64 * 128 + 4 * (4 * 128 * 128 + 4 * 128 + 2 * 128 * 512 + 512 + 128 + 4 * 128) + 2 * 128
    std = model.blocks[0].ff.fc2.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(8)) < 0.002  # GPT-2's scaled residual init
    untied = create_model("gpt_char", vocab_size=65, tie_weights=False)
    assert untied.lm_head.weight is not untied.wte.weight


def test_forward_rejects_too_long_input_clearly() -> None:
    model = tiny_gpt()
    with pytest.raises(ValueError, match="prompt of 17 tokens is longer than the model's context of 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    cache = KVCache(2)
    model(torch.zeros(1, 10, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="after the 10 tokens in the cache"):
        model(torch.zeros(1, 7, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="token ids"):
        model(torch.zeros(1, 4))


def test_generate_crops_long_prompts_and_slides_the_window() -> None:
    model = tiny_gpt()
    prompt = torch.randint(0, 50, (2, 40))
    out = model.generate(prompt, 30, temperature=0)  # prompt 40 > context 16: only its last 16 are read
    assert out.shape == (2, 70) and torch.equal(out[:, :40], prompt)
    cropped = model.generate(prompt[:, -16:], 30, temperature=0)
    assert torch.equal(out[:, 40:], cropped[:, 16:])


def test_generate_with_cache_equals_without_cache() -> None:
    model = tiny_gpt(seed=3)
    prompt = torch.randint(0, 50, (3, 5))
    a = model.generate(prompt, 25, temperature=0)  # 30 > 16 tokens: the window slides too
    b = model.generate(prompt, 25, temperature=0, use_cache=False)
    assert torch.equal(a, b)
    # and greedy decoding is the argmax of the full forward at every step
    with torch.no_grad():
        logits = model(a[:, 4:20])  # positions 0.. of the window [4, 20) -- a fresh 16-token context
    assert torch.equal(logits[:, -1].argmax(-1), a[:, 20])


def test_generate_sampling_is_seeded_and_streams() -> None:
    model = tiny_gpt(seed=1).train()
    prompt = torch.tensor([3, 4])
    seen: list[int] = []
    kw = {"temperature": 0.9, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2}
    a = model.generate(prompt, 20, generator=torch.Generator().manual_seed(0), stream=seen.append, **kw)
    b = model.generate(prompt, 20, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(a, b) and seen == a[0, 2:].tolist()
    assert model.training  # mode restored
    bigrams = list(zip(a[0, :-1].tolist(), a[0, 1:].tolist(), strict=True))
    assert len(bigrams) == len(set(bigrams))  # no_repeat_ngram_size=2 held
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, 2, top_p=1.5)
    with pytest.raises(ValueError, match="repetition_penalty"):
        model.generate(prompt, 2, repetition_penalty=0)


def test_attention_maps_are_causal() -> None:
    model = tiny_gpt()
    maps = model.attention_maps(torch.randint(0, 50, (2, 8)))
    assert len(maps) == 2 and maps[0].shape == (2, 2, 8, 8)
    assert torch.all(maps[1].triu(diagonal=1) == 0)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 2, 8))


def test_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = create_model("gpt_char", vocab_size=20, num_layers=2, embed_dim=32, num_heads=2, max_len=16).train()
    x = torch.randint(0, 20, (4, 17))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1, loss.item()


# ----------------------------------------------------------------------------------------------
# decoding filters


def test_top_k_keeps_k() -> None:
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0, 4.0], [0.0, -1.0, 2.0, 1.0, -2.0]])
    out = gen.top_k_filter(logits, 2)
    assert torch.isfinite(out).sum(-1).tolist() == [2, 2]
    assert torch.isfinite(out[0]).tolist() == [False, True, False, False, True]
    assert torch.isfinite(out[1]).tolist() == [False, False, True, True, False]
    assert torch.equal(gen.top_k_filter(logits, None), logits) and torch.equal(gen.top_k_filter(logits, 9), logits)
    with pytest.raises(ValueError, match="top_k"):
        gen.top_k_filter(logits, 0)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    probs = torch.tensor([[0.05, 0.5, 0.2, 0.25]])
    logits = probs.log()
    kept = lambda p: torch.isfinite(gen.top_p_filter(logits, p))[0].tolist()  # noqa: E731
    assert kept(0.5) == [False, True, False, False]  # 0.5 alone reaches 0.5
    assert kept(0.51) == [False, True, False, True]  # 0.5 + 0.25
    assert kept(0.75) == [False, True, False, True]
    assert kept(0.76) == [False, True, True, True]
    assert kept(0.01) == [False, True, False, False]  # the most likely token always stays
    assert kept(1.0) == [True] * 4
    with pytest.raises(ValueError, match="top_p"):
        gen.top_p_filter(logits, 0.0)


def test_repetition_penalty_divides_positive_and_multiplies_negative() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, -1.0]])
    out = gen.apply_repetition_penalty(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0, -1.0]]
    assert torch.equal(gen.apply_repetition_penalty(logits, torch.tensor([[0]]), 1.0), logits)
    with pytest.raises(ValueError, match="repetition_penalty"):
        gen.apply_repetition_penalty(logits, torch.tensor([[0]]), -1.0)


def test_no_repeat_ngram_bans_exactly_the_completing_tokens() -> None:
    ids = torch.tensor([[1, 2, 3, 1, 2, 4, 1, 2], [5, 5, 5, 5, 5, 5, 5, 6]])
    logits = torch.zeros(2, 8)
    banned = torch.isinf(gen.ban_repeated_ngrams(logits, ids, 3))
    assert banned[0].nonzero().flatten().tolist() == [3, 4]  # "1 2" was followed by 3 and by 4
    assert banned[1].nonzero().flatten().tolist() == []  # "5 6" never occurred before
    bigram = torch.isinf(gen.ban_repeated_ngrams(logits, ids, 2))
    assert bigram[0].nonzero().flatten().tolist() == [3, 4]  # "2" was followed by 3 and 4
    unigram = torch.isinf(gen.ban_repeated_ngrams(logits, ids, 1))
    assert unigram[1].nonzero().flatten().tolist() == [5, 6]  # n = 1: every token seen
    assert torch.equal(gen.ban_repeated_ngrams(logits, ids, 0), logits)
    assert torch.equal(gen.ban_repeated_ngrams(logits, ids[:, :2], 3), logits)  # too short for a 3-gram


def test_greedy_is_argmax_and_sampling_is_seeded() -> None:
    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(0))
    assert torch.equal(gen.sample_next(logits, temperature=0)[:, 0], logits.argmax(-1))
    a = gen.sample_next(logits, generator=torch.Generator().manual_seed(5))
    b = gen.sample_next(logits, generator=torch.Generator().manual_seed(5))
    assert a.shape == (4, 1) and torch.equal(a, b)
    # top_k=1 sampling is greedy too; a low temperature sharpens towards it
    assert torch.equal(gen.sample_next(logits, top_k=1)[:, 0], logits.argmax(-1))
    with pytest.raises(ValueError, match="temperature"):
        gen.sample_next(logits, temperature=-1.0)
    with pytest.raises(ValueError, match="greedy"):
        gen.apply_temperature(logits, 0)
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        gen.top_k_filter(logits[None], 2)


def test_benchmark_plain_model_computes_the_same_function() -> None:
    """The benchmark's hand-written nanoGPT-style model and archlab's GPT agree given the same weights."""
    from archlab.bench.gpt_bench import PlainGPT

    torch.manual_seed(0)
    plain = PlainGPT(30, context=16, d=32, layers=2, heads=2).eval()
    ours = create_model("gpt_char", vocab_size=30, max_len=16, num_layers=2, num_heads=2, embed_dim=32).eval()
    p = plain.state_dict()
    sd = {"wte.weight": p["tok.weight"], "wpe.weight": p["pos.weight"], "ln_f.weight": p["ln.weight"],
          "ln_f.bias": p["ln.bias"], "lm_head.weight": p["tok.weight"]}
    for i in range(2):
        b = f"blocks.{i}."  # the same block prefix in both models
        for src, dst in (("attn.qkv", "self_attn.qkv_proj"), ("attn.proj", "self_attn.out_proj"), ("ln1", "norm1"), ("ln2", "norm2"),
                         ("fc", "ff.fc1"), ("out", "ff.fc2")):
            for part in ("weight", "bias"):
                sd[f"{b}{dst}.{part}"] = p[f"{b}{src}.{part}"]
    ours.load_state_dict(sd, strict=True)
    x = torch.randint(0, 30, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), plain(x), atol=1e-5, rtol=1e-5)
