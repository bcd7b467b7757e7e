"""Non-finite latents are an error wherever they come from, blamed on the step and the part that made them,
and checked on the device: one host read per clip, not one per denoiser call."""

import sys

import pytest
import torch
from diffusers import DDIMScheduler

from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, ForwardOverlap, LongVideoSampler, ReconstructionGuidance

PRIOR = GaussianVideoPrior(num_frames=8, frame_shape=(2, 4, 4), lengthscale=3.0)
SHAPE = (1, 2, 8, 4, 4)


def zero_snr() -> DDIMScheduler:
    """abar = 0 at the first step: DDIM's x0 = (z - sqrt(1 - abar) eps) / sqrt(abar) is 0 / 0 there."""
    return DDIMScheduler(rescale_betas_zero_snr=True, timestep_spacing="trailing", clip_sample=False)


class Counting:
    """The exact denoiser, counting calls; `poison` = (clip, step) makes that call's output NaN. A function
    of its inputs (the clip comes from `run`'s clip_cond), so a clip run again misbehaves again."""

    def __init__(self, scheduler, steps, poison=None):
        self.exact, self.scheduler, self.poison, self.calls = PRIOR.denoiser(scheduler), scheduler, poison, 0

    def __call__(self, latents, t, clip):
        self.calls += 1
        step = self.scheduler.timesteps.tolist().index(int(t))
        output = self.exact(latents, t)
        return output * float("nan") if (clip, step) == self.poison else output


class NaNStep(DDIMScheduler):
    """DDIM whose step `step` of clips `clip`, `clip` + 1, ... returns NaN latents. The sampler sets the
    timesteps once up front and once per clip run (a clip run again to find the step counts as a later
    one)."""

    def __init__(self, clip, step, **kwargs):
        super().__init__(clip_sample=False, **kwargs)
        self.clip, self.bad_step, self.runs = clip, step, 0

    def set_timesteps(self, *args, **kwargs):
        self.runs += 1
        return super().set_timesteps(*args, **kwargs)

    def step(self, output, t, *args, **kwargs):
        out = super().step(output, t, *args, **kwargs)
        if self.runs - 2 >= self.clip and self.timesteps.tolist().index(int(t)) == self.bad_step:
            out.prev_sample = out.prev_sample * float("nan")
        return out


def run(strategies, scheduler, denoiser, steps, num_clips=3, dtype=torch.float32, on_clip=None):
    sampler = LongVideoSampler(strategies, prompt_frames=3, progress=False)
    generator = torch.Generator().manual_seed(0)
    return sampler.sample(denoiser, scheduler, SHAPE, num_clips, steps, generator=generator, dtype=dtype,
                          on_clip=on_clip, clip_cond=lambda i: {"clip": i})  # fmt: skip


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_zero_snr_first_step_is_the_schedulers_nan(steps):
    # With one step the old code returned all-NaN latents silently; with more it blamed the denoiser at
    # step 1 for the NaN that the scheduler made at step 0 (the exact denoiser is finite at abar = 0).
    scheduler = zero_snr()
    denoiser, streamed = Counting(scheduler, steps), []
    with pytest.raises(ValueError, match=r"the scheduler returned non-finite values.* clip 0, step 0\b"):
        run([FNR()], scheduler, denoiser, steps, on_clip=streamed.append)
    assert denoiser.calls == 2 * steps  # found at the end of clip 0 (then run again to find the step)
    assert streamed == []  # the NaN clip was not streamed out


@pytest.mark.parametrize(("clip", "step"), [(0, 0), (1, 3), (2, 5)])
def test_a_scheduler_nan_is_blamed_on_its_step_not_on_the_next_denoiser_call(clip, step):
    # DSG copies clip 1's recorded latents into clip 2: the NaN reaches every later denoiser input.
    steps = 6
    scheduler = NaNStep(clip, step)
    with pytest.raises(ValueError, match=rf"the scheduler returned .* clip {clip}, step {step}\b"):
        run([FNR(), PNS(alpha=4), DSG(beta=1.0)], scheduler, Counting(scheduler, steps), steps)


@pytest.mark.parametrize(("clip", "step"), [(0, 0), (1, 3), (2, 5)])
def test_a_denoiser_nan_is_blamed_on_the_denoiser_at_its_step(ddim, clip, step):
    steps = 6
    denoiser = Counting(ddim, steps, poison=(clip, step))
    with pytest.raises(ValueError, match=rf"the denoiser returned .* clip {clip}, step {step}\b"):
        run([FNR(), PNS(alpha=4), DSG(beta=1.0)], ddim, denoiser, steps)
    assert denoiser.calls == (clip + 2) * steps  # clip ran to its end, then once more; the next did not start


class NaNGuidance:
    """Turns frame 0 into NaN at (clip, step); records nothing."""

    def __init__(self, clip, step):
        self.at = (clip, step)

    def record_spec(self, num_frames, prompt_frames, num_steps):
        return DSG(beta=0.0).record_spec(num_frames, prompt_frames, num_steps)

    def __call__(self, latents, context):
        if (context.clip_index, context.step_index) != self.at:
            return latents
        return torch.cat([latents[:, :, :1] * float("nan"), latents[:, :, 1:]], dim=2)


def test_a_guidance_nan_is_not_blamed_on_the_denoiser(ddim):
    # Clip 1, step 2's denoiser input is NaN; the guidance made it, not the denoiser nor the scheduler.
    match = r"the guidance strategies\[0\] \(.*NaNGuidance.*\) returned .* clip 1, step 2\b"
    with pytest.raises(ValueError, match=match):
        run([NaNGuidance(1, 2)], ddim, Counting(ddim, 4), 4)


def test_non_finite_initial_noise_is_blamed_on_the_initializers(ddim):
    def poisoned(noise, context):  # a custom initializer: clip 1's noise gets an inf
        return noise.index_fill(2, torch.tensor([0]), float("inf")) if context.clip_index == 1 else noise

    denoiser, match = Counting(ddim, 4), "the noise initializers returned non-finite initial noise for clip 1"
    with pytest.raises(ValueError, match=match):
        run([FNR(), poisoned], ddim, denoiser, 4)
    assert denoiser.calls == 12  # clips 0 and 1, then clip 1 once more to find the source


class NaNUnderGrad:
    """The exact denoiser, but NaN when its input requires grad: only predict_x0's calls (recon) see it."""

    def __init__(self, scheduler):
        self.exact = PRIOR.denoiser(scheduler)

    def __call__(self, latents, t, clip):
        output = self.exact(latents, t)
        return output * float("nan") if latents.requires_grad else output


def test_a_nan_of_the_x0_estimate_is_blamed_on_the_denoiser_called_through_predict_x0(ddim):
    # Reconstruction guidance starts at clip 1 and calls the denoiser through predict_x0 at every step:
    # its NaN x0 gradient then makes the guidance's output NaN too, but the denoiser made it first.
    match = (r"the denoiser \(called by the guidance strategies\[1\] \(ReconstructionGuidance.*\) through "
             r"predict_x0\) returned .* clip 1, step 0\b")  # fmt: skip
    with pytest.raises(ValueError, match=match):
        run([ForwardOverlap(), ReconstructionGuidance(1.0)], ddim, NaNUnderGrad(ddim), 4)


def test_a_guidance_nan_that_a_later_guidance_reads_through_predict_x0_is_the_first_guidances(ddim):
    # NaNGuidance poisons clip 1, step 1; reconstruction guidance then calls predict_x0 on those latents
    # (its x0 is NaN too), but the first guidance made the NaN: it is the one named.
    match = r"the guidance strategies\[1\] \(.*NaNGuidance.*\) returned .* clip 1, step 1\b"
    with pytest.raises(ValueError, match=match):
        run([ForwardOverlap(), NaNGuidance(1, 1), ReconstructionGuidance(1.0)], ddim, Counting(ddim, 4), 4)


class HostReads:
    """Counts host reads of tensor values (bool(), .item(), float(), ...) made by samplers/sampler.py."""

    METHODS = ("__bool__", "item", "__float__", "__int__", "__index__", "tolist", "numpy")

    def __init__(self, monkeypatch):
        self.count = 0
        for name in self.METHODS:
            monkeypatch.setattr(torch.Tensor, name, self.wrap(getattr(torch.Tensor, name)))

    def wrap(self, method):
        def counted(tensor, *args, **kwargs):
            if sys._getframe(1).f_code.co_filename.endswith("samplers/sampler.py"):
                self.count += 1
            return method(tensor, *args, **kwargs)

        return counted


def test_at_most_one_host_read_per_clip_whatever_the_number_of_steps(ddim, monkeypatch):
    # On a GPU every read of a tensor value on the host waits for the device; the check must not add one
    # per denoiser call.
    reads = HostReads(monkeypatch)
    counts, exact = [], PRIOR.denoiser(ddim)
    for steps in (3, 12):
        reads.count = 0
        run([FNR(), PNS(alpha=4), DSG(beta=0.4)], ddim, lambda x, t, clip: exact(x, t), steps, num_clips=2)
        counts.append(reads.count)
    assert counts[0] == counts[1] <= 2


def test_float16_latents_whose_sum_overflows_float16_are_finite():
    # With sample prediction the last DDIM step returns x0 itself (abar_prev = 1): 0.5 everywhere, whose
    # sum over 4 * 16 * 64 * 64 values (131072) is beyond float16's 65504. The check must sum in float32.
    def halves(latents, t, **cond):
        return torch.full_like(latents, 0.5)

    scheduler = DDIMScheduler(clip_sample=False, prediction_type="sample")
    video = LongVideoSampler([FNR()], progress=False).sample(
        halves, scheduler, (1, 4, 16, 64, 64), 1, 2, generator=torch.Generator().manual_seed(0),
        dtype=torch.float16)  # fmt: skip
    assert torch.equal(video.latents, torch.full((1, 4, 16, 64, 64), 0.5, dtype=torch.float16))


def test_a_nan_that_a_rerun_does_not_reproduce_is_still_an_error(ddim):
    # A nondeterministic denoiser (NaN on its 3rd call only): the clip's final latents are NaN, the re-run
    # that looks for the step finds none; the clip is refused all the same, and says why.
    exact, calls = PRIOR.denoiser(ddim), []

    def flaky(latents, t, clip):
        calls.append(1)
        return exact(latents, t) * (float("nan") if len(calls) == 3 else 1.0)

    with pytest.raises(ValueError, match=r"clip 0 are not finite .* did not reproduce it"):
        run([FNR()], ddim, flaky, 4)


def test_the_diagnostic_sums_of_float16_outputs_do_not_overflow_into_a_false_blame():
    # The denoiser returns 0.5 everywhere: finite, but its sum over 131072 values is beyond float16's
    # 65504. The scheduler's last step is NaN, so the clip is re-run with every output logged: summed in
    # float16, the denoiser's output at step 0 would look non-finite and be blamed; in float32 the
    # scheduler's step 1 is.
    def halves(latents, t, **cond):
        return torch.full_like(latents, 0.5)

    scheduler = NaNStep(0, 1, prediction_type="sample")
    with pytest.raises(ValueError, match=r"the scheduler returned non-finite values .* clip 0, step 1\b"):
        LongVideoSampler([FNR()], progress=False).sample(
            halves, scheduler, (1, 4, 16, 64, 64), 1, 2, generator=torch.Generator().manual_seed(0),
            dtype=torch.float16)  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_the_clip_check_reads_the_values_not_only_their_sum(dtype):
    """The check sums first (one reduction, no mask); values whose sum overflows are still finite, and
    one NaN or inf among them is still caught."""
    from samplers.sampler import _all_finite

    big = torch.full((2, 3), torch.finfo(dtype).max, dtype=dtype)  # finite; the float32 sum is inf
    assert _all_finite(big) and _all_finite(torch.zeros(5, dtype=dtype))
    for bad in (float("nan"), float("inf"), -float("inf")):
        poisoned = big.clone()
        poisoned[1, 2] = bad
        assert not _all_finite(poisoned)
        assert not _all_finite(torch.zeros(5, dtype=dtype).index_fill(0, torch.tensor([3]), bad))
