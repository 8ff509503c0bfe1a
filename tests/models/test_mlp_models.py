"""The perceptron and the MLP: the perceptron rule, XOR, and the MLP's options."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.common import ACTIVATIONS
from archlab.models.mlp import MLP, Perceptron
from archlab.registry import create_model, model_config

GATES = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
AND = torch.tensor([0, 0, 0, 1])
OR = torch.tensor([0, 1, 1, 1])
XOR = torch.tensor([0, 1, 1, 0])


def perceptron_criterion(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_k s_k - s_y, averaged (the loss the task uses for preferred_loss='perceptron')."""
    return (scores.max(1).values - scores.gather(1, y[:, None]).squeeze(1)).mean()


def train_perceptron(y: torch.Tensor, epochs: int = 20) -> Perceptron:
    model = create_model("perceptron", in_features=2, num_classes=2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(epochs):
        for i in range(4):  # one sample at a time: Rosenblatt's online rule
            loss = perceptron_criterion(model(GATES[i : i + 1]), y[i : i + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def test_perceptron_is_one_linear_layer_from_zero() -> None:
    m = create_model("perceptron", in_features=4, num_classes=3)
    assert isinstance(m, Perceptron) and m.preferred_loss == "perceptron"
    assert sum(p.numel() for p in m.parameters()) == 4 * 3 + 3
    assert all(torch.all(p == 0) for p in m.parameters())
    assert m(torch.randn(5, 1, 2, 2)).shape == (5, 3)  # any input is flattened


@pytest.mark.parametrize("target", [AND, OR], ids=["AND", "OR"])
def test_perceptron_learns_linearly_separable_gates(target: torch.Tensor) -> None:
    model = train_perceptron(target)
    assert torch.equal(model(GATES).argmax(1), target)


def test_perceptron_cannot_learn_xor() -> None:
    model = train_perceptron(XOR, epochs=50)
    assert (model(GATES).argmax(1) == XOR).sum() < 4  # Minsky & Papert: not linearly separable


def test_sgd_on_the_criterion_is_rosenblatts_update() -> None:
    """One SGD step (lr) on max_k s_k - s_t equals W_t += lr x, W_pred -= lr x (both code paths)."""
    torch.manual_seed(0)
    model = create_model("perceptron", in_features=5, num_classes=4, init="default")
    x, t = torch.randn(1, 5), torch.tensor([2])
    w0, b0 = model.linear.weight.detach().clone(), model.linear.bias.detach().clone()
    pred = model(x).argmax(1).item()
    if pred == t.item():
        t = torch.tensor([(pred + 1) % 4])
    lr = 0.5
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    perceptron_criterion(model(x), t).backward()
    opt.step()
    w_ref, b_ref = w0.clone(), b0.clone()
    w_ref[t.item()] += lr * x[0]
    w_ref[pred] -= lr * x[0]
    b_ref[t.item()] += lr
    b_ref[pred] -= lr
    torch.testing.assert_close(model.linear.weight, w_ref)
    torch.testing.assert_close(model.linear.bias, b_ref)


def test_mlp_learns_xor() -> None:
    torch.manual_seed(0)
    model = create_model("mlp", in_features=2, num_classes=2, hidden_dims=(8,), activation="tanh")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        logits = model(GATES)
        if torch.equal(logits.argmax(1), XOR):
            break
        loss = F.cross_entropy(logits, XOR)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model(GATES).argmax(1), XOR)


def test_mlp_structure_follows_the_config() -> None:
    m = create_model("mlp_deep", in_features=20, num_classes=5)
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (20, 256),
        (256, 256),
        (256, 256),
        (256, 5),
    ]
    bn = create_model("mlp", batch_norm=True, dropout=0.3)
    assert sum(isinstance(mod, nn.BatchNorm1d) for mod in bn.modules()) == 1
    assert any(isinstance(mod, nn.Dropout) and mod.p == 0.3 for mod in bn.modules())
    linear = create_model("mlp", hidden_dims=(), in_features=7, num_classes=3)
    assert sum(p.numel() for p in linear.parameters()) == 7 * 3 + 3


def test_variant_defaults() -> None:
    assert model_config("mlp").hidden_dims == (128,)
    assert model_config("mlp_small").hidden_dims == (64,)
    assert model_config("mlp_deep").hidden_dims == (256, 256, 256)
    assert model_config("mlp_deep", hidden_dims=[32]).hidden_dims == (32,)


@pytest.mark.parametrize(
    "activation", ["relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu", "selu", "silu"]
)
def test_every_activation(activation: str) -> None:
    m = create_model("mlp", in_features=6, num_classes=2, hidden_dims=(4,), activation=activation)
    assert isinstance(m.blocks[0].act, ACTIVATIONS[activation])
    assert torch.isfinite(m(torch.randn(3, 6))).all()


@pytest.mark.parametrize(
    "init", ["default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]
)
@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu"])
def test_every_init(init: str, activation: str) -> None:
    torch.manual_seed(0)
    m = create_model("mlp", in_features=64, num_classes=4, init=init, activation=activation)
    assert torch.isfinite(m(torch.randn(3, 64))).all()
    if init != "default":
        assert torch.all(m.head.bias == 0)


def test_init_scales() -> None:
    torch.manual_seed(0)
    w = (
        create_model("mlp", in_features=1000, hidden_dims=(1000,), init="kaiming_normal")
        .blocks[0]
        .linear.weight
    )
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)
    w = (
        create_model("mlp", in_features=1000, hidden_dims=(500,), init="xavier_uniform")
        .blocks[0]
        .linear.weight
    )
    assert w.abs().max().item() <= math.sqrt(6 / 1500) + 1e-6
    w = create_model("mlp", in_features=1000, hidden_dims=(1000,), init="kaiming_normal", activation="tanh")
    assert w.blocks[0].linear.weight.std().item() == pytest.approx((5 / 3) / math.sqrt(1000), rel=0.02)


def test_mlp_class_takes_layers() -> None:
    m = MLP(3, 2, (4, 4), act_layer=nn.GELU, norm_layer=nn.LayerNorm)
    assert isinstance(m.blocks[1].norm, nn.LayerNorm) and isinstance(m.blocks[1].act, nn.GELU)
    assert m(torch.randn(2, 3)).shape == (2, 2)
