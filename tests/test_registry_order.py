"""parse_strategies refuses strategies that would do nothing (a duplicate, an item whose work a later one
overwrites) and warns on legal but suspicious combinations; the defaults of every caller stay quiet."""

import warnings

import pytest
import torch
from diffusers import DDIMScheduler

from benchmarks.compare import DEFAULT_COMBINATIONS, PEER_COMBINATIONS, check_combination
from benchmarks.sweep_grid import DEFAULT_ABLATIONS, EXTRA_COMBINATIONS, MODEL_EXTRAS
from models import GaussianVideoPrior
from samplers import FNR, CompositionWarning, FreeNoiseRescheduling, LongVideoSampler, NoiseContext
from samplers.registry import parse_strategies

PRIOR = GaussianVideoPrior(num_frames=8, frame_shape=(1, 2, 2), lengthscale=3.0)


def filled(template):
    return [template.format(alpha=a, beta=b) for a in (0.0, 4.0) for b in (0.0, 0.4, 1.0)]


CALLERS_DEFAULTS = sorted(
    {*DEFAULT_COMBINATIONS, *PEER_COMBINATIONS, *EXTRA_COMBINATIONS, *MODEL_EXTRAS,
     "fnr,pns:4,dsg:0.4", "overlap,recon:10", "overlap,recon:0", "fnr,dsg:0.4", "overlap,recon:0.4"}
    | {text for ablation in DEFAULT_ABLATIONS for t in ablation.templates for text in filled(t)}
)  # fmt: skip


@pytest.mark.parametrize("text", CALLERS_DEFAULTS)
def test_the_callers_default_strings_parse_without_a_warning(text):
    # the benchmarks' names: strategy lists, or methods that make the whole video (benchmarks.joint)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_combination(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("fnr,fnr", r"strategy 'fnr' is given twice \('fnr' and 'fnr'\)"),
        ("dsg:0.4,dsg:0.2", r"strategy 'dsg' is given twice \('dsg:0.4' and 'dsg:0.2'\)"),
        ("fnr,pns:4,dsg:0.4,pns:2", r"strategy 'pns' is given twice \('pns:4' and 'pns:2'\)"),
        ("independent,independent", "strategy 'independent' is given twice"),
    ],
)
def test_duplicates_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        parse_strategies(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pns:4,fnr", r"'pns:4' has no effect before 'fnr': FNR replaces .* apply it after: 'fnr,pns:4'"),
        ("pns:4,dsg:0.4,fnr", r"'pns:4' has no effect before 'fnr'.* apply it after: 'dsg:0.4,fnr,pns:4'"),
        ("pns:2,freenoise-noise", r"'pns:2' has no effect before 'freenoise-noise': FreeNoiseRescheduling "),
        ("fnr,freenoise-noise", r"'fnr' has no effect before 'freenoise-noise'.* and 'freenoise-noise'"),
        ("freenoise-noise,fnr", r"'freenoise-noise' has no effect before 'fnr'.* 'freenoise-noise' and"),
        ("dsg:0.4,overlap", r"'dsg:0.4' has no effect before 'overlap': ForwardOverlap\(beta=1.0\) replaces"),
        ("dsg:0.4,overlap:0.5", r"'dsg:0.4' has no effect before 'overlap:0.5'"),
    ],
)
def test_an_item_whose_work_a_later_one_overwrites_is_refused(text, match):
    with pytest.raises(ValueError, match=match):
        parse_strategies(text)


@pytest.mark.parametrize(
    "text",
    [
        "fnr,pns:4",  # PNS mixes fresh noise into FNR's reversed noise: the paper
        "freenoise-noise,pns:4",
        "pyoco-mixed,fnr,pns:4",  # PYoCo changes clip 0 only, which FNR and PNS leave alone: anywhere
        "fnr,pyoco-mixed,pns:4",
        "pyoco-progressive:4,fnr,pns:4,dsg:0.4",
        "dsg:0.4,fnr",  # guidances and initializers act at different times: their relative order is free
        "dsg:0,overlap",  # DSG(beta=0) does nothing in any order (a sweep's point, not a mistake)
        "dsg:0.4,overlap:0",
        "overlap,recon:0.2",
        "recon:0,overlap",
    ],
)
def test_orders_in_which_every_item_acts_are_accepted_quietly(text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_strategies(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("overlap,dsg:0.4", r"'overlap' and 'dsg:0.4' both replace the prompt frames"),
        ("dsg:0.4,overlap:0.3", r"'dsg:0.4' and 'overlap:0.3' both replace the prompt frames"),
        ("dsg:0.4,overlap:0.4", r"'dsg:0.4' and 'overlap:0.4' both replace the prompt frames"),  # rounding
        ("dsg:0.4,recon:0.2", r"'dsg:0.4' and 'recon:0.2' pull the prompt frames"),
        ("recon:0.2,overlap", r"'recon:0.2' is listed before 'overlap'.* 'overlap,recon:0.2'"),
    ],
)
def test_suspicious_combinations_warn(text, match):
    with pytest.warns(CompositionWarning, match=match):
        assert len(parse_strategies(text)) == 2


def sample(strategies, steps=6, num_clips=3):
    scheduler = DDIMScheduler(clip_sample=False)
    return LongVideoSampler(strategies, prompt_frames=3, progress=False).sample(
        PRIOR.denoiser(scheduler), scheduler, (2, 1, 8, 2, 2), num_clips, steps,
        generator=torch.Generator().manual_seed(0), dtype=torch.float64).latents  # fmt: skip


@pytest.mark.parametrize(
    ("refused", "alone"),
    [
        ("pns:4,fnr", "fnr"),
        ("freenoise-noise:8:stride=2,fnr", "fnr"),
        ("dsg:0.4,overlap:0.5", "overlap:0.5"),
        ("dsg:0.4,overlap", "overlap"),
    ],
)
def test_a_refused_order_samples_the_same_bits_as_without_the_lost_item(refused, alone):
    # Why they are refused: built by hand (the registry refuses them), they sample exactly what the later
    # item alone samples, although the lost item ran (and drew from the generator).
    first, second = refused.split(",", 1)
    by_hand = parse_strategies(first) + parse_strategies(second)
    for steps in (5, 7):  # DSG's and the overlap's held steps round differently at different T
        assert torch.equal(sample(by_hand, steps), sample(parse_strategies(alone), steps))


@pytest.mark.parametrize("replacer", [FNR(), FreeNoiseRescheduling(8, 2), FreeNoiseRescheduling(5, 5)])
def test_fnr_and_freenoise_discard_the_candidate_noise_of_later_clips(replacer):
    # Why an initializer before them is refused: for clips i >= 1 their output depends on the previous
    # clip's noise and the generator only (FreeNoise's draws its permutations from it), not on the candidate.
    previous, a, b = torch.randn((3, 2, 1, 8, 2, 2), generator=torch.Generator().manual_seed(0))
    outputs = []
    for candidate in (a, b):
        context = NoiseContext(1, 3, previous, torch.Generator().manual_seed(1))
        outputs.append(replacer(candidate, context))
    assert torch.equal(outputs[0], outputs[1])
