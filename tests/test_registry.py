"""Strategy strings: every name, the `name:value` and `name:key=value` syntax, errors naming the item."""

import pytest

from samplers import (
    DSG,
    FNR,
    PNS,
    ForwardOverlap,
    FreeNoiseRescheduling,
    IndependentNoise,
    PYoCoMixed,
    PYoCoProgressive,
    ReconstructionGuidance,
)
from samplers.registry import PAPER, STRATEGIES, is_paper_strategy, parse_strategies, strategy_names


def test_every_name_with_its_defaults():
    expected = {
        "independent": IndependentNoise(),
        "fnr": FNR(),
        "pns": PNS(),
        "dsg": DSG(),
        "freenoise-noise": FreeNoiseRescheduling(),
        "pyoco-mixed": PYoCoMixed(),
        "pyoco-progressive": PYoCoProgressive(),
        "overlap": ForwardOverlap(),
        "recon": ReconstructionGuidance(),
    }
    assert set(STRATEGIES) == set(expected)
    for name, strategy in expected.items():
        assert parse_strategies(name) == [strategy]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fnr,pns:4,dsg:0.4", [FNR(), PNS(alpha=4.0), DSG(beta=0.4)]),  # the old syntax still works
        ("freenoise-noise:window=16:stride=4", [FreeNoiseRescheduling(window=16, stride=4)]),
        ("freenoise-noise:8", [FreeNoiseRescheduling(window=8, stride=4)]),  # a bare value: the first
        ("freenoise-noise:8:stride=2", [FreeNoiseRescheduling(window=8, stride=2)]),
        ("freenoise-noise:stride=2:window=3", [FreeNoiseRescheduling(window=3, stride=2)]),
        (" overlap:0.5 , recon:weight=2 ", [ForwardOverlap(beta=0.5), ReconstructionGuidance(weight=2.0)]),
        ("pyoco-mixed:alpha=1.5,pyoco-progressive:2,fnr", [PYoCoMixed(1.5), PYoCoProgressive(2.0), FNR()]),
        ("dsg:beta=0.4", [DSG(beta=0.4)]),
    ],
)
def test_syntax(text, expected):
    assert parse_strategies(text) == expected


def test_values_take_the_parameters_type():
    (freenoise,) = parse_strategies("freenoise-noise:window=16:stride=4")
    assert type(freenoise.window) is int and type(freenoise.stride) is int
    (recon,) = parse_strategies("recon:2")
    assert type(recon.weight) is float


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("fnr,freenoise-noise:w=3", r"'freenoise-noise:w=3' is invalid: parameter must be one of \['wi"),
        ("recon:weight=1:weight=2", r"'recon:weight=1:weight=2' is invalid: parameter 'weight' is given"),
        ("freenoise-noise:4:5", r"'freenoise-noise:4:5' is invalid: only the first value may be unnamed"),
        ("freenoise-noise:4.5", r"'freenoise-noise:4.5' is invalid: invalid literal for int"),
        ("freenoise-noise:window=4:stride=8", r"'freenoise-noise:window=4:stride=8' is invalid: stride mu"),
        ("fnr:2", r"'fnr:2' is invalid: fnr takes no parameters"),
        ("recon:-1", r"'recon:-1' is invalid: weight must be in"),
        ("pyoco:1", r"strategy must be one of .*got 'pyoco:1'"),
        ("overlap:beta=x", r"'overlap:beta=x' is invalid: could not convert"),
    ],
)
def test_errors_name_the_item(text, match):
    with pytest.raises(ValueError, match=match):
        parse_strategies(text)


def test_strategy_names_and_which_compositions_are_the_papers():
    assert strategy_names("fnr, pns:4,dsg:beta=0.4") == ["fnr", "pns", "dsg"]
    assert strategy_names("overlap,recon:30") == ["overlap", "recon"]
    for text in ("fnr", "pns:4", "dsg:0.4", "fnr,pns:4", PAPER):
        assert is_paper_strategy(text), text
    for text in ("independent", "overlap", "fnr,recon:10", "pyoco-mixed,fnr", "", "fnr,windows:pyramid"):
        assert not is_paper_strategy(text), text
