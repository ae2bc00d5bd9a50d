"""Fusion functions match their formulas (alignment itself: test_alignment.py)."""

import pytest
import torch

from flare_xlt.alignment import Alignment
from flare_xlt.config import FUSIONS
from flare_xlt.errors import FlareError
from flare_xlt.fusion import build_fusion

S = torch.tensor([[[1.0, -2.0], [3.0, -4.0]]])  # aligned source [1, 2, 2]
T = torch.tensor([[[-0.5, 2.0], [1.5, -1.0]]])  # target [1, 2, 2]
IDENTITY = Alignment.from_index(torch.tensor([[0, 1]]))
MASK = torch.ones(1, 2, dtype=torch.long)

EXPECTED = {
    "add": S + T,
    "mul": S * T,
    "add_relu": S.relu() + T.relu(),
    "mul_relu": S.relu() * T.relu(),
    "gated": T.relu() + S.relu(),  # gate starts at 1
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_elementwise_fusions_match_formula(name):
    fused = build_fusion(name, r=2)(T, S, IDENTITY, MASK)
    torch.testing.assert_close(fused, EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_source_equals_zero_source(name):
    fusion = build_fusion(name, r=2)
    zero = fusion(T, torch.zeros_like(S), IDENTITY, MASK)
    torch.testing.assert_close(fusion(T, None, None, None), zero)


def test_add_with_zero_source_is_plain_lora_exactly():
    fusion = build_fusion("add", r=2)
    assert torch.equal(fusion(T, torch.zeros_like(S), IDENTITY, MASK), T)
    assert torch.equal(fusion(T, None, None, None), T)


def test_gated_gate_scales_source():
    fusion = build_fusion("gated", r=2)
    with torch.no_grad():
        fusion.gate.copy_(torch.tensor([0.5, 2.0]))
    expected = T.relu() + torch.tensor([0.5, 2.0]) * S.relu()
    torch.testing.assert_close(fusion(T, S, IDENTITY, MASK), expected)


def test_cross_attention_formula_and_parameter_count():
    torch.manual_seed(0)
    r = 4
    fusion = build_fusion("cross_attention", r)
    assert sum(p.numel() for p in fusion.parameters()) == 3 * (r * r + r)
    target, source = torch.randn(1, 3, r), torch.randn(1, 5, r)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    q, k, v = fusion.query(target), fusion.key(source[:, :3]), fusion.value(source[:, :3])
    weights = torch.softmax(q @ k.transpose(1, 2) / r**0.5, dim=-1)
    expected = target + weights @ v
    torch.testing.assert_close(fusion(target, source, None, mask), expected)
    # an example with no real source token keeps its target unchanged
    torch.testing.assert_close(fusion(target, source, None, torch.zeros_like(mask)), target)


def test_unknown_fusion_lists_valid_names():
    with pytest.raises(FlareError, match="add_relu"):
        build_fusion("concat", r=2)
    assert set(FUSIONS) == {"add", "mul", "add_relu", "mul_relu", "cross_attention", "gated"}
