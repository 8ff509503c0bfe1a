"""Transformer building blocks against torch's reference implementations and the papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.transformer.attention import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)
from archlab.models.transformer.layers import (
    FeedForward,
    LearnedPositionalEmbedding,
    RMSNorm,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
    make_norm,
    sinusoidal_table,
)

ATOL = 1e-6


def _qkv(B: int = 2, h: int = 3, T: int = 5, S: int = 5, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, h, T, d, generator=g), torch.randn(B, h, S, d, generator=g),
            torch.randn(B, h, S, d, generator=g))


# --------------------------------------------------------------------------- masks and the math path

def test_causal_and_padding_masks():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    # two cached tokens in front: query i sees keys j <= i + 2
    assert torch.equal(causal_mask(2, 4), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))
    with pytest.raises(ValueError, match="S >= T"):
        causal_mask(4, 2)
    ids = torch.tensor([[5, 6, 0], [7, 0, 0]])
    assert torch.equal(padding_mask(ids, 0), torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool))


@pytest.mark.parametrize("case", ["none", "padding", "causal", "both", "cache_offset", "float"])
def test_math_attention_equals_torch_sdpa(case):
    T, S = (3, 7) if case == "cache_offset" else (5, 5)
    q, k, v = _qkv(T=T, S=S)
    kpm = torch.ones(2, S, dtype=torch.bool)
    kpm[1, -2:] = False  # right padding of the second row
    kpm4 = kpm[:, None, None, :]  # (B, 1, 1, S)
    mask, causal, ref_mask = None, False, None
    if case == "padding":
        mask = ref_mask = kpm4
    elif case == "causal":
        causal, ref_mask = True, causal_mask(T, S)
    elif case == "both":
        mask, causal, ref_mask = kpm4, True, kpm4 & causal_mask(T, S)
    elif case == "cache_offset":
        mask, causal, ref_mask = kpm4, True, kpm4 & causal_mask(T, S)
        assert ref_mask[0, 0, 0, :S - T + 1].all() and not ref_mask[0, 0, 0, S - T + 1:].any()
    elif case == "float":
        mask = ref_mask = torch.randn(2, 1, T, S)
    out, w = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=ref_mask)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    assert w.shape == (2, 3, T, S)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, T), atol=ATOL, rtol=0)
    if ref_mask is not None and ref_mask.dtype == torch.bool:
        assert (w.masked_select(~ref_mask.expand_as(w)) == 0).all()


def test_math_attention_scale_and_dropout_only_in_training():
    q, k, v = _qkv()
    out, _ = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3), atol=ATOL, rtol=0)
    a, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    b, _ = scaled_dot_product_attention(q, k, v)
    assert torch.equal(a, b)
    c, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=True)
    assert not torch.allclose(b, c)


@pytest.mark.parametrize("impl", ["math", "fast"])
@pytest.mark.parametrize("float_mask", [False, True])
def test_fully_masked_rows_give_zero_not_nan(impl, float_mask):
    q, k, v = (t.requires_grad_() for t in _qkv())
    mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    mask[0, :, 2] = False  # query 2 of row 0 may see nothing
    fmask = torch.zeros(mask.shape).masked_fill(~mask, float("-inf")) if float_mask else mask
    out, w = scaled_dot_product_attention(q, k, v, attn_mask=fmask)
    assert torch.equal(out[0, :, 2], torch.zeros(3, 8)) and torch.equal(w[0, :, 2], torch.zeros(3, 5))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))

    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, impl=impl)
    x = torch.randn(2, 5, 16, requires_grad=True)
    kpm = torch.ones(2, 5, dtype=torch.bool)
    kpm[0, :3] = False  # left padding + causal: queries 0..2 of row 0 see no key
    y, _ = mha(x, key_padding_mask=kpm, is_causal=True)
    assert torch.isfinite(y).all()
    # a fully masked query's attention output is 0, so the block output is out_proj's bias
    torch.testing.assert_close(y[0, :3], mha.out_proj.bias.expand(3, 16), atol=ATOL, rtol=0)
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in mha.parameters())


# --------------------------------------------------------------------------- MultiHeadAttention vs torch

def _copy_mha(ours: MultiHeadAttention, ref: nn.MultiheadAttention) -> None:
    wq, wk, wv = ref.in_proj_weight.detach().chunk(3)
    bq, bk, bv = ref.in_proj_bias.detach().chunk(3)
    with torch.no_grad():
        for proj, w, b in ((ours.q_proj, wq, bq), (ours.k_proj, wk, bk), (ours.v_proj, wv, bv)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        ours.out_proj.bias.copy_(ref.out_proj.bias)


@pytest.mark.parametrize("impl", ["fast", "math"])
@pytest.mark.parametrize("cross", [False, True])
def test_mha_equals_torch_multihead_attention(impl, cross):
    torch.manual_seed(0)
    D, h, B, T, S = 16, 4, 3, 5, 6 if cross else 5
    ref = nn.MultiheadAttention(D, h, batch_first=True).train()  # train(): no fused eval fast path
    ours = MultiHeadAttention(D, h, impl=impl)
    _copy_mha(ours, ref)
    x = torch.randn(B, T, D, requires_grad=True)
    mem = torch.randn(B, S, D, requires_grad=True) if cross else x
    kpm = torch.ones(B, S, dtype=torch.bool)
    kpm[1, -2:] = False
    kpm[2, -1:] = False
    causal = None if cross else causal_mask(T)
    y, w = ours(x, mem, mem, key_padding_mask=kpm, attn_mask=causal, need_weights=True)
    y_ref, w_ref = ref(x, mem, mem, key_padding_mask=~kpm, attn_mask=None if causal is None else ~causal,
                       need_weights=True, average_attn_weights=True)
    torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(w.mean(1), w_ref, atol=ATOL, rtol=0)
    # the same without weights (the fast path when impl="fast"), and with is_causal instead of a mask
    y2, none = ours(x, mem, mem, key_padding_mask=kpm, is_causal=not cross)
    assert none is None
    torch.testing.assert_close(y2, y_ref, atol=ATOL, rtol=0)

    g = torch.randn_like(y)
    grads = torch.autograd.grad(y2, [x, mem, *ours.parameters()] if cross else [x, *ours.parameters()], g)
    grads_ref = torch.autograd.grad(y_ref, [x, mem, *ref.parameters()] if cross else [x, *ref.parameters()], g)
    n_in = 2 if cross else 1
    for a, b in zip(grads[:n_in], grads_ref[:n_in], strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    named = dict(zip([n for n, _ in ours.named_parameters()], grads[n_in:], strict=True))
    ref_named = dict(zip([n for n, _ in ref.named_parameters()], grads_ref[n_in:], strict=True))
    torch.testing.assert_close(torch.cat([named["q_proj.weight"], named["k_proj.weight"], named["v_proj.weight"]]),
                               ref_named["in_proj_weight"], atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.cat([named["q_proj.bias"], named["k_proj.bias"], named["v_proj.bias"]]),
                               ref_named["in_proj_bias"], atol=ATOL, rtol=0)
    torch.testing.assert_close(named["out_proj.weight"], ref_named["out_proj.weight"], atol=ATOL, rtol=0)
    torch.testing.assert_close(named["out_proj.bias"], ref_named["out_proj.bias"], atol=ATOL, rtol=0)


def test_mha_masks_kdim_errors_and_dropout():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, kdim=6, vdim=10, dropout=0.5)
    x, k, v = torch.randn(2, 3, 16), torch.randn(2, 4, 6), torch.randn(2, 4, 10)
    mha.eval()
    a, _ = mha(x, k, v)
    assert a.shape == (2, 3, 16) and torch.equal(a, mha(x, k, v)[0])  # no dropout in eval
    mha.train()
    assert not torch.allclose(a, mha(x, k, v)[0])
    mha.eval()
    # a (B, T, S) bool mask and the same as a float mask give the same result; the paths agree
    m = torch.rand(2, 3, 4) > 0.3
    m[..., 0] = True
    fm = torch.zeros(2, 3, 4).masked_fill(~m, float("-inf"))
    fast = mha(x, k, v, attn_mask=m)[0]
    torch.testing.assert_close(fast, mha(x, k, v, attn_mask=fm)[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(fast, mha(x, k, v, attn_mask=m, need_weights=True)[0], atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="impl"):
        MultiHeadAttention(8, 2, impl="flash")
    with pytest.raises(ValueError, match=r"query must be \(B, T, 16\)"):
        mha(torch.randn(3, 16))
    with pytest.raises(TypeError, match="bool"):
        mha(x, k, v, key_padding_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\(B, S=4\)"):
        mha(x, k, v, key_padding_mask=torch.ones(2, 3, dtype=torch.bool))


# --------------------------------------------------------------------------- KV cache

def test_kv_cache_update_reorder_and_errors():
    cache = KVCache(2)
    assert cache.length == 0 and cache.seq_len(1) == 0
    k1, v1 = torch.randn(3, 2, 4, 5), torch.randn(3, 2, 4, 5)
    cache.update(0, k1, v1)
    k, v = cache.update(0, k1[:, :, :1], v1[:, :, :1])
    assert k.shape == (3, 2, 5, 5) and cache.length == 5 and cache.seq_len(1) == 0
    assert torch.equal(k[:, :, :4], k1) and torch.equal(v[:, :, 4:], v1[:, :, :1])
    rows = torch.tensor([2, 2, 0])
    cache.reorder(rows)
    assert torch.equal(cache.layers[0][0], k[rows]) and cache.layers[1] is None
    with pytest.raises(IndexError, match="KVCache has 2 layers"):
        cache.update(2, k1, v1)
    cache.reset()
    assert cache.length == 0


def _stack(norm_first: bool, cross: bool, impl: str = "fast", layers: int = 2) -> nn.ModuleList:
    torch.manual_seed(0)
    return nn.ModuleList(TransformerBlock(16, 4, 32, norm_first=norm_first, cross_attention=cross, impl=impl,
                                          dropout=0.3, attention_dropout=0.3) for _ in range(layers)).eval()


def _run(blocks, x, memory=None, mem_kpm=None, **kw):
    for i, blk in enumerate(blocks):
        x = blk(x, memory=memory, memory_padding_mask=mem_kpm, is_causal=True, layer=i, **kw)[0]
    return x


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("use_rotary", [False, True])
def test_incremental_decoding_with_cache_equals_full_causal_forward(norm_first, cross, use_rotary):
    blocks = _stack(norm_first, cross)
    rotary = RotaryEmbedding(4) if use_rotary else None
    g = torch.Generator().manual_seed(1)
    B, T = 2, 7
    x = torch.randn(B, T, 16, generator=g)
    memory = torch.randn(B, 6, 16, generator=g) if cross else None
    mem_kpm = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool) if cross else None
    with torch.no_grad():
        full = _run(blocks, x, memory, mem_kpm, rotary=rotary)
        # a prompt of 3 tokens at once (T=3 queries against S=3 keys), then one token at a time
        for first in (3, 1):
            cache, cross_cache = KVCache(len(blocks)), KVCache(len(blocks))
            outs = [_run(blocks, x[:, :first], memory, mem_kpm, rotary=rotary, cache=cache, cross_cache=cross_cache)]
            for t in range(first, T):
                mem_t = memory if t == first else None  # the cross cache holds the memory's keys/values
                outs.append(_run(blocks, x[:, t:t + 1], mem_t, mem_kpm, rotary=rotary, cache=cache,
                                 cross_cache=cross_cache))
            assert cache.length == T and cache.seq_len(1) == T
            torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=0)
        # two new tokens against a cache of five: exercises the S - T offset of the causal mask
        cache, cross_cache = KVCache(len(blocks)), KVCache(len(blocks))
        a = _run(blocks, x[:, :5], memory, mem_kpm, rotary=rotary, cache=cache, cross_cache=cross_cache)
        b = _run(blocks, x[:, 5:], memory, mem_kpm, rotary=rotary, cache=cache, cross_cache=cross_cache)
        torch.testing.assert_close(torch.cat([a, b], dim=1), full, atol=1e-5, rtol=0)


def test_cache_with_padding_and_beam_reorder_math_impl():
    blocks = _stack(True, False, impl="math")
    x = torch.randn(3, 6, 16)
    kpm = torch.ones(3, 6, dtype=torch.bool)
    kpm[2, :2] = False  # left padding in row 2
    with torch.no_grad():
        full = _run(blocks, x, key_padding_mask=kpm)
        cache = KVCache(2)
        outs = [_run(blocks, x[:, t:t + 1], key_padding_mask=kpm[:, :t + 1], cache=cache) for t in range(6)]
        torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=0)
        # reorder the beams, continue, compare with the full forward of the reordered inputs
        rows = torch.tensor([1, 1, 0])
        cache = KVCache(2)
        _run(blocks, x[:, :4], cache=cache)
        cache.reorder(rows)
        last = _run(blocks, x[rows, 4:], cache=cache)
        torch.testing.assert_close(last, _run(blocks, x[rows])[:, 4:], atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- positions

def test_sinusoidal_encoding_matches_paper_formula():
    L, D = 50, 16
    pe = sinusoidal_table(L, D)
    for pos in (0, 1, 7, 49):
        for i in range(D // 2):
            assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / D)), abs_tol=1e-6)
            assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / D)), abs_tol=1e-6)
    enc = SinusoidalPositionalEncoding(L, D)
    x = torch.randn(2, 5, D)
    torch.testing.assert_close(enc(x), x + pe[:5])
    torch.testing.assert_close(enc(x, offset=10), x + pe[10:15])
    assert "pe" not in enc.state_dict()
    assert sinusoidal_table(4, 5).shape == (4, 5)  # odd width
    with pytest.raises(ValueError, match="max_len=50"):
        enc(torch.randn(1, 3, D), offset=48)


def test_learned_positional_embedding():
    emb = LearnedPositionalEmbedding(10, 4)
    assert torch.equal(emb(3), emb.weight[:3]) and torch.equal(emb(2, offset=5), emb.weight[5:7])
    pos = torch.tensor([[0, 1, 2], [4, 5, 6]])
    assert torch.equal(emb(pos, offset=1), emb.weight[pos + 1])
    assert list(emb.state_dict()) == ["weight"]
    with pytest.raises(ValueError, match="max_len=10"):
        emb(4, offset=8)


@pytest.mark.parametrize("interleaved", [True, False])
def test_rotary_relative_positions_and_offsets(interleaved):
    rot = RotaryEmbedding(8, interleaved=interleaved)
    g = torch.Generator().manual_seed(0)
    q0, k0 = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)

    def dot(m: int, n: int) -> float:
        q, _ = rot.apply(q0, q0, offset=m)
        _, k = rot.apply(k0, k0, offset=n)
        return (q * k).sum().item()

    # <R_m q, R_n k> depends only on m - n
    for m, n in ((3, 1), (10, 8), (102, 100)):
        assert math.isclose(dot(m, n), dot(2, 0), abs_tol=1e-4)
    assert not math.isclose(dot(3, 0), dot(2, 0), abs_tol=1e-3)
    # a rotation: norms are kept, position 0 is the identity
    q, k = rot.apply(q0, k0)
    torch.testing.assert_close(q, q0)
    torch.testing.assert_close(k, k0)
    q = torch.randn(2, 3, 6, 8, generator=g)
    qr, kr = rot.apply(q, q)
    torch.testing.assert_close(qr.norm(dim=-1), q.norm(dim=-1))
    # offsets: rotating tokens 4..5 with offset=4 equals the slice of the full rotation
    part, _ = rot.apply(q[:, :, 4:], q[:, :, 4:], offset=4)
    torch.testing.assert_close(part, qr[:, :, 4:])
    # per-row positions
    pos = torch.tensor([[0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9]])
    qp, _ = rot.apply(q, q, positions=pos)
    torch.testing.assert_close(qp[0], qr[0])
    torch.testing.assert_close(qp[1], rot.apply(q[1:], q[1:], offset=4)[0][0])


def test_rotary_pairs_layout_and_module_apply():
    rot = RotaryEmbedding(4)
    x = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 1, 4)
    q, _ = rot.apply(x, x, offset=1)  # pair 0 by 1 rad, pair 1 by 1/100 rad
    expect = torch.tensor([math.cos(1), math.sin(1), math.cos(0.01), math.sin(0.01)])
    torch.testing.assert_close(q.flatten(), expect)
    model = nn.Sequential(nn.Linear(2, 2), rot)  # nn.Module.apply(fn) must still walk the rotary module
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert "RotaryEmbedding" in seen
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(5)


# --------------------------------------------------------------------------- norms and feed-forward

def test_rmsnorm_formula_and_make_norm():
    norm = RMSNorm(6, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 7.0))
    x = torch.randn(2, 3, 6)
    expect = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-6) * torch.arange(1.0, 7.0)
    torch.testing.assert_close(norm(x), expect)
    torch.testing.assert_close(norm(x.bfloat16()).float(), expect, atol=0.05, rtol=0.02)
    assert isinstance(make_norm("layernorm", 6, 1e-5), nn.LayerNorm) and make_norm("layernorm", 6, 1e-5).eps == 1e-5
    assert isinstance(make_norm("rmsnorm", 6, 1e-6), RMSNorm)
    with pytest.raises(ValueError, match="layernorm"):
        make_norm("batchnorm", 6, 1e-5)


def test_feed_forward_activations():
    ff = FeedForward(4, 8, activation="gelu_tanh")
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(ff(x), ff.fc2(F.gelu(ff.fc1(x), approximate="tanh")))
    ff = FeedForward(4, 8, activation="relu")
    torch.testing.assert_close(ff(x), ff.fc2(F.relu(ff.fc1(x))))
    with pytest.raises(ValueError, match="activation"):
        FeedForward(4, 8, activation="tanh")


# --------------------------------------------------------------------------- blocks vs torch layers

def _copy_ff_norms(ours: TransformerBlock, ref: nn.Module, norm_pairs: list[tuple[str, str]]) -> None:
    with torch.no_grad():
        ours.ff.fc1.load_state_dict(ref.linear1.state_dict())
        ours.ff.fc2.load_state_dict(ref.linear2.state_dict())
        for a, b in norm_pairs:
            getattr(ours, a).load_state_dict(getattr(ref, b).state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_block_equals_torch_encoder_layer(norm_first, activation):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation=activation, batch_first=True,
                                     norm_first=norm_first)
    ours = TransformerBlock(16, 4, 32, norm_first=norm_first, activation=activation)
    _copy_mha(ours.self_attn, ref.self_attn)
    _copy_ff_norms(ours, ref, [("norm1", "norm1"), ("norm2", "norm2")])
    x = torch.randn(3, 5, 16, requires_grad=True)
    kpm = torch.ones(3, 5, dtype=torch.bool)
    kpm[1, -2:] = False
    y = ours(x, key_padding_mask=kpm, is_causal=True)[0]
    y_ref = ref(x, src_mask=~causal_mask(5), src_key_padding_mask=~kpm)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    g = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, [x, ours.ff.fc1.weight], g)
    gx_ref, gw_ref = torch.autograd.grad(y_ref, [x, ref.linear1.weight], g)
    torch.testing.assert_close(gx, gx_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(gw, gw_ref, atol=1e-5, rtol=0)
    ours.eval(), ref.eval()  # torch's fused inference path too
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_equals_torch_decoder_layer(norm_first):
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    ours = TransformerBlock(16, 4, 32, norm_first=norm_first, activation="relu", cross_attention=True)
    _copy_mha(ours.self_attn, ref.self_attn)
    _copy_mha(ours.cross_attn, ref.multihead_attn)
    _copy_ff_norms(ours, ref, [("norm1", "norm1"), ("norm_cross", "norm2"), ("norm2", "norm3")])
    x, mem = torch.randn(3, 5, 16, requires_grad=True), torch.randn(3, 7, 16, requires_grad=True)
    tpm, mpm = torch.ones(3, 5, dtype=torch.bool), torch.ones(3, 7, dtype=torch.bool)
    tpm[2, -1:] = False
    mpm[0, -3:] = False
    y, w_self, w_cross = ours(x, memory=mem, key_padding_mask=tpm, memory_padding_mask=mpm, is_causal=True,
                              need_weights=True)
    assert w_self.shape == (3, 4, 5, 5) and w_cross.shape == (3, 4, 5, 7)
    assert (w_cross[0, ..., -3:] == 0).all()
    y_ref = ref(x, mem, tgt_mask=~causal_mask(5), tgt_key_padding_mask=~tpm, memory_key_padding_mask=~mpm)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, mem, ours.cross_attn.k_proj.weight], g)
    grads_ref = torch.autograd.grad(y_ref, [x, mem, ref.multihead_attn.in_proj_weight], g)
    torch.testing.assert_close(grads[0], grads_ref[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(grads[1], grads_ref[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(grads[2], grads_ref[2][16:32], atol=1e-5, rtol=0)


def test_block_options_and_errors():
    blk = TransformerBlock(16, 4, 32, norm="rmsnorm", bias=False, activation="gelu_tanh")
    assert isinstance(blk.norm1, RMSNorm) and blk.ff.fc1.bias is None and blk.self_attn.q_proj.bias is None
    x = torch.randn(2, 3, 16)
    y, w, wc = blk(x)
    assert y.shape == x.shape and w is None and wc is None
    with pytest.raises(ValueError, match="cross_attention=True"):
        blk(x, memory=x)
    dec = TransformerBlock(16, 4, 32, cross_attention=True)
    with pytest.raises(ValueError, match="needs memory"):
        dec(x)
    # dropout only in training mode
    drop = TransformerBlock(16, 4, 32, dropout=0.5, attention_dropout=0.5).eval()
    assert torch.equal(drop(x)[0], drop(x)[0])
    drop.train()
    assert not torch.allclose(drop(x)[0], drop(x)[0])


def test_packed_attention_equals_separate_projections() -> None:
    """``packed=True`` (one qkv_proj, GPT-2's layout) computes what three separate projections do."""
    torch.manual_seed(0)
    sep = MultiHeadAttention(16, 4)
    packed = MultiHeadAttention(16, 4, packed=True)
    with torch.no_grad():
        packed.qkv_proj.weight.copy_(torch.cat([sep.q_proj.weight, sep.k_proj.weight, sep.v_proj.weight]))
        packed.qkv_proj.bias.copy_(torch.cat([sep.q_proj.bias, sep.k_proj.bias, sep.v_proj.bias]))
        packed.out_proj.load_state_dict(sep.out_proj.state_dict())
    x = torch.randn(2, 5, 16)
    for kwargs in ({}, {"is_causal": True}, {"need_weights": True, "is_causal": True}):
        a, wa = sep(x, **kwargs)
        b, wb = packed(x, **kwargs)
        torch.testing.assert_close(a, b)
        if wa is not None:
            torch.testing.assert_close(wa, wb)
    # each (D, D) block is initialised as its own Xavier-uniform matrix, as the separate layers
    bound = (6 / 32) ** 0.5
    assert packed.qkv_proj.weight.abs().max() <= bound and packed.qkv_proj.weight.abs().max() > 0.8 * bound
    with pytest.raises(ValueError, match="self-attention only"):
        packed(x, torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="packed=True is for self-attention"):
        MultiHeadAttention(16, 4, kdim=8, packed=True)
