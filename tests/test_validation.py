"""Bad input: a clear error naming the parameter and the allowed values, raised before any work."""

import pytest
import torch
from diffusers import HeunDiscreteScheduler

from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, LongVideoSampler

PRIOR = GaussianVideoPrior(num_frames=8, frame_shape=(1, 2, 2))
SHAPE = (1, 1, 8, 2, 2)


class Counting:
    """A denoiser that counts its calls, so a test can tell that no work was done."""

    def __init__(self, scheduler, output=None):
        self.exact, self.output, self.calls = PRIOR.denoiser(scheduler), output, 0

    def __call__(self, latents, t):
        self.calls += 1
        return self.exact(latents, t) if self.output is None else self.output(latents)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: PNS(alpha=-1.0), r"alpha must be in \[0.0, inf\]; got -1.0"),
        (lambda: PNS(alpha=float("nan")), r"alpha must be in \[0.0, inf\]; got nan"),
        (lambda: DSG(beta=1.01), r"beta must be in \[0.0, 1.0\]; got 1.01"),
        (lambda: DSG(beta=-0.5), r"beta must be in \[0.0, 1.0\]"),
        (lambda: LongVideoSampler(prompt_frames=0), r"prompt_frames must be an integer in \[1, inf\]; got 0"),
    ],
)
def test_bad_strategy_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_non_numbers_are_type_errors():
    with pytest.raises(TypeError, match="alpha must be a real number"):
        PNS(alpha="4")
    with pytest.raises(TypeError, match="prompt_frames must be an integer"):
        LongVideoSampler(prompt_frames=2.0)
    with pytest.raises(TypeError, match=r"strategies\[1\] must be a NoiseInitializer or a LatentGuidance"):
        LongVideoSampler([FNR(), 3])
    with pytest.raises(TypeError, match=r"strategies\[0\] is the class DSG; pass an instance, e.g. DSG\(\)"):
        LongVideoSampler([DSG])


BAD_SAMPLE_CALLS = [
    ({"clip_shape": (1, 1, 8, 2)}, ValueError, r"clip_shape must be 5 positive ints \(B, C, N, H, W\)"),
    ({"clip_shape": 8}, ValueError, "clip_shape must be 5 positive ints"),
    ({"clip_shape": (1, 1, 0, 2, 2)}, ValueError, "clip_shape must be 5 positive ints"),
    ({"clip_shape": (1, 1, 4, 2, 2)}, ValueError, r"prompt_frames must be in \[1, N-1\] = \[1, 3\].*got 4"),
    ({"num_clips": 0}, ValueError, r"num_clips must be an integer in \[1, inf\]; got 0"),
    ({"num_inference_steps": 0}, ValueError, r"num_inference_steps must be an integer in \[1, inf\]"),
    ({"generator": None}, TypeError, "generator must be a torch.Generator"),
    (
        {"scheduler": object()},
        TypeError,
        "scheduler must be a diffusers-style scheduler.*lacks set_timesteps",
    ),
    ({"scheduler": HeunDiscreteScheduler()}, ValueError, r"order=2.*allowed: schedulers with order 1"),
    ({"denoiser": "not callable"}, TypeError, "denoiser must be callable"),
]


@pytest.mark.parametrize(("override", "error", "match"), BAD_SAMPLE_CALLS)
def test_bad_sample_arguments_fail_before_any_work(ddim, override, error, match):
    denoiser = Counting(ddim)
    args = {"denoiser": denoiser, "scheduler": ddim, "clip_shape": SHAPE, "num_clips": 2,
            "num_inference_steps": 5, "generator": torch.Generator().manual_seed(0)}  # fmt: skip
    args.update(override)
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=4, progress=False)
    with pytest.raises(error, match=match):
        sampler.sample(**args)
    assert denoiser.calls == 0


@pytest.mark.parametrize(
    ("output", "match", "calls"),
    [
        (
            lambda x: x[:, :, :-1],
            r"denoiser must return a tensor of the latents' shape \(1, 1, 8, 2, 2\); got",
            1,
        ),
        (lambda x: x.numpy(), "denoiser must return a tensor", 1),
        # Finiteness is read on the host once per clip: the clip ends, then runs again to find the step.
        (lambda x: x * float("nan"), r"the denoiser returned non-finite values .* clip 0, step 0\b", 10),
    ],
)
def test_bad_denoiser_output_stops_the_first_clip(ddim, output, match, calls):
    denoiser = Counting(ddim, output)
    sampler = LongVideoSampler([FNR()], prompt_frames=4, progress=False)
    with pytest.raises(ValueError, match=match):
        sampler.sample(denoiser, ddim, SHAPE, 2, 5, generator=torch.Generator().manual_seed(0))
    assert denoiser.calls == calls
