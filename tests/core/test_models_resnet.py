"""gpucnn.models.build_resnet: ResNet-18 and -50 against published totals and, layer by layer, torchvision.

tests/data/resnet_layers.json was written once from torchvision by
tests/data/make_resnet_layers.py (its "about" field says how); torchvision is
not needed to run these tests.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from gpucnn.models import build_resnet, layer_macs, parameter_count

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "data" / "resnet_layers.json").read_text())
INPUT_SHAPE = tuple(FIXTURE["input_shape"])  # (1, 3, 224, 224)
NAMES = ["resnet18", "resnet50"]

# He et al. 2016 and torchvision's model cards: parameters, and multiply-adds (GMACs) at 224x224.
PUBLISHED_PARAMS = {"resnet18": 11_689_512, "resnet50": 25_557_032}
PUBLISHED_GMACS = {"resnet18": 1.81, "resnet50": 4.09}


@functools.cache
def our_layers(name: str) -> tuple[dict, ...]:
    """build_resnet's leaf modules, described as the fixture describes torchvision's (same recipe as the generator)."""
    model = build_resnet(name).eval()
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    outputs: dict[str, list[list[int]]] = {n: [] for n, _ in leaves}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: outputs[n].append(list(out.shape)))
               for n, m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros(INPUT_SHAPE))
    finally:
        for h in handles:
            h.remove()
    return tuple({"name": n, "type": type(m).__name__, "config": m.extra_repr(),
                  "params": {p: list(t.shape) for p, t in m.named_parameters(recurse=False)},
                  "output": outputs[n]}
                 for n, m in leaves)


def config_fields(extra_repr: str) -> tuple[list[str], dict[str, str]]:
    """'3, 64, kernel_size=(7, 7), bias=False' -> (['3', '64'], {'kernel_size': '(7, 7)', 'bias': 'False'})."""
    tokens = re.findall(r"[^,(]+(?:\([^)]*\))?", extra_repr)
    positional, named = [], {}
    for token in (t.strip() for t in tokens if t.strip()):
        key, eq, value = token.partition("=")
        if eq:
            named[key] = value
        else:
            positional.append(token)
    return positional, named


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_the_published_one(name: str) -> None:
    assert parameter_count(build_resnet(name)) == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_the_fixture_adds_up_to_the_published_parameter_count(name: str) -> None:
    total = sum(torch.Size(shape).numel() for layer in FIXTURE[name] for shape in layer["params"].values())
    assert total == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_multiply_adds_at_224_round_to_the_published_gmacs(name: str) -> None:
    macs = layer_macs(build_resnet(name), INPUT_SHAPE)
    assert set(macs) == {"conv", "linear"}
    assert macs["linear"] == FIXTURE[name][-1]["params"]["weight"][1] * 1000  # the fc layer: features x classes
    assert round((macs["conv"] + macs["linear"]) / 1e9, 2) == PUBLISHED_GMACS[name]


@pytest.mark.parametrize("name", NAMES)
def test_leaf_modules_have_torchvisions_names_and_types_in_order(name: str) -> None:
    ours = [(layer["name"], layer["type"]) for layer in our_layers(name)]
    theirs = [(layer["name"], layer["type"]) for layer in FIXTURE[name]]
    assert ours == theirs


@pytest.mark.parametrize("name", NAMES)
def test_parameter_shapes_match_torchvision_layer_by_layer(name: str) -> None:
    mismatches = [(ours["name"], ours["params"], theirs["params"])
                  for ours, theirs in zip(our_layers(name), FIXTURE[name], strict=True)
                  if ours["params"] != theirs["params"]]
    assert mismatches == []


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_match_torchvision_layer_by_layer(name: str) -> None:
    """Every call's output, ReLUs' repeated calls included: a stride in the wrong conv shows up here."""
    mismatches = [(ours["name"], ours["output"], theirs["output"])
                  for ours, theirs in zip(our_layers(name), FIXTURE[name], strict=True)
                  if ours["output"] != theirs["output"]]
    assert mismatches == []


@pytest.mark.parametrize("name", NAMES)
def test_layer_settings_match_torchvision_layer_by_layer(name: str) -> None:
    """Kernel, stride, padding, eps, inplace...: the settings both torch versions print (a newer one may add some)."""
    mismatches = []
    for ours, theirs in zip(our_layers(name), FIXTURE[name], strict=True):
        (our_pos, our_named), (their_pos, their_named) = config_fields(ours["config"]), config_fields(theirs["config"])
        common = our_named.keys() & their_named.keys()
        if our_pos != their_pos or {k: our_named[k] for k in common} != {k: their_named[k] for k in common}:
            mismatches.append((ours["name"], ours["config"], theirs["config"]))
    assert mismatches == []


def test_resnet50_is_v1_5_the_stride_sits_in_the_3x3_conv() -> None:
    """v1 strides the first 1x1 conv of a stage's first block; v1.5 (torchvision, MLPerf) strides the 3x3."""
    model = build_resnet("resnet50")
    for stage in (model.layer2, model.layer3, model.layer4):
        first = stage[0]
        assert (first.conv1.stride, first.conv2.stride, first.conv3.stride) == ((1, 1), (2, 2), (1, 1))
        assert first.downsample[0].stride == (2, 2)
    assert model.layer1[0].conv2.stride == (1, 1)
    # And the 1x1 before it still sees the full 56x56 image, as in the fixture.
    assert dict((layer["name"], layer["output"]) for layer in our_layers("resnet50"))["layer2.0.conv1"] == [
        [1, 128, 56, 56]]


def test_an_unknown_resnet_is_a_value_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="resnet101") as info:
        build_resnet("resnet101")
    assert "resnet18" in str(info.value) and "resnet50" in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_the_seed_fixes_the_weights_without_touching_the_global_rng(name: str) -> None:
    state = torch.random.get_rng_state()
    a, b, c = build_resnet(name, seed=1), build_resnet(name, seed=1), build_resnet(name, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_batch_norm_starts_as_the_identity_and_convs_are_he_initialised() -> None:
    model = build_resnet("resnet18", seed=0)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)
    w = model.layer4[1].conv2.weight  # fan_out = 512 * 3 * 3: std sqrt(2 / fan_out) ~ 0.0208
    assert w.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.05)
