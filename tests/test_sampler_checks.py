"""LongVideoSampler.sample refuses what it cannot use, naming the parameter, the value and what is allowed,
before the denoiser is called (and what strategies and callbacks return, at the call that returned it)."""

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from models import GaussianVideoPrior
from samplers import DSG, FNR, PNS, LongVideoSampler

PRIOR = GaussianVideoPrior(num_frames=8, frame_shape=(1, 2, 2))
SHAPE = (1, 1, 8, 2, 2)
STEPS = 3


class Counting:
    """The exact denoiser, counting its calls (no call: no work was done)."""

    def __init__(self, scheduler):
        self.exact, self.calls = PRIOR.denoiser(scheduler), 0

    def __call__(self, latents, t, **cond):
        self.calls += 1
        return self.exact(latents, t)


PAPER = (FNR(), PNS(alpha=4), DSG(beta=0.4))


def attempt(strategies=PAPER, scheduler=None, denoiser=None, **kwargs):
    """Sample 2 clips of STEPS steps; return the denoiser, whose calls tell how much work was done."""
    scheduler = scheduler or DDIMScheduler(clip_sample=False)
    denoiser = denoiser or Counting(scheduler)
    sampler = LongVideoSampler(list(strategies), prompt_frames=4, progress=False)
    sampler.sample(denoiser, scheduler, SHAPE, 2, STEPS, generator=torch.Generator().manual_seed(0), **kwargs)
    return denoiser


def refused(error, match, calls=0, scheduler=None, **kwargs):
    scheduler = scheduler or DDIMScheduler(clip_sample=False)
    denoiser = Counting(scheduler)
    with pytest.raises(error, match=match) as caught:
        attempt(scheduler=scheduler, denoiser=denoiser, **kwargs)
    assert denoiser.calls == calls
    return caught.value


ALLOWED_DTYPES = r"allowed: torch.float16, torch.bfloat16, torch.float32, torch.float64"


@pytest.mark.parametrize(
    ("dtype", "error"),
    [
        (torch.int64, ValueError),
        (torch.bool, ValueError),
        (torch.complex64, ValueError),
        ("float32", TypeError),
    ],
)
def test_dtype_must_be_a_real_floating_dtype(dtype, error):
    scheduler = EulerDiscreteScheduler()  # with which complex64 used to come back as complex latents
    refused(error, rf"dtype must be a floating torch.dtype \({ALLOWED_DTYPES}\); got {dtype!r}",
            scheduler=scheduler, dtype=dtype)  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_allowed_dtype_samples_in_that_dtype(dtype):
    denoiser = attempt(dtype=dtype)
    assert denoiser.calls == 2 * STEPS


@pytest.mark.parametrize(
    ("device", "error", "match"),
    [
        ("meta", ValueError, r"device must be .*; got 'meta' \(meta tensors hold no values\)"),
        ("foo", ValueError, r"device must be .*; got 'foo' \(not a device name"),
        (torch.device("meta"), ValueError, r"device must be .*; got device\(type='meta'\)"),
        (3.5, TypeError, r"device must be a torch.device, a device name .* or None; got 3.5"),
    ],
)
def test_device_must_exist(device, error, match):
    refused(error, match, device=device)


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "mps"])
def test_device_of_an_absent_backend_is_refused(name):
    backend = torch.device(name).type
    available = torch.cuda.is_available() if backend == "cuda" else torch.backends.mps.is_available()
    if available:
        pytest.skip(f"{backend} is available here")
    refused(ValueError, rf"device must be .*; got '{name}' \({backend} is not available on this machine\)",
            device=name)  # fmt: skip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_beyond_the_devices_is_refused():
    name = f"cuda:{torch.cuda.device_count()}"
    count = torch.cuda.device_count()
    refused(ValueError, rf"got '{name}' \(this machine has {count} cuda device", device=name)


@pytest.mark.parametrize("device", ["cpu", "cpu:1", torch.device("cpu"), None])  # torch: any index is the CPU
def test_existing_devices_are_accepted(device):
    assert attempt(device=device).calls == 2 * STEPS


def test_on_clip_must_be_callable():
    refused(TypeError, r"on_clip must be None or a callable Clip -> None; got \[\]", on_clip=[])


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (["prompt"], r"clip_cond\(1\) must return a dict of denoiser keyword arguments .*; got \['prompt'\]"),
        ({1: "x"}, r"clip_cond\(1\) must return a dict .* with str keys, .*; got \{1: 'x'\}"),
        (None, r"clip_cond\(1\) must return a dict .*; got None"),
    ],
)
def test_clip_cond_must_return_a_dict_of_keywords(returned, match):
    def clip_cond(i):
        return {"prompt": "fine"} if i == 0 else returned

    # Clip 0's conditioning is fine, so clip 0 is sampled; clip 1's is refused before its first call.
    refused(TypeError, match, calls=STEPS, clip_cond=clip_cond)


class Chop:
    """A noise initializer or guidance that returns the wrong tensor: `how` maps latents to it."""

    def __init__(self, how, guidance=False):
        self.how = how
        if guidance:
            self.record_spec = lambda n, m, t: DSG(beta=0.0).record_spec(n, m, t)

    def __call__(self, latents, context):
        return self.how(latents)

    def __repr__(self):
        return "Chop()"


@pytest.mark.parametrize(
    ("how", "error", "got"),
    [
        (lambda x: x[:, :, 1:], ValueError, r"shape \(1, 1, 7, 2, 2\) and dtype torch.float32"),
        (lambda x: x.double(), ValueError, r"shape \(1, 1, 8, 2, 2\) and dtype torch.float64"),
        (lambda x: x.numpy(), TypeError, "ndarray"),
        (lambda x: x.to("meta"), ValueError, "on device meta"),
    ],
)
def test_noise_initializer_output_is_checked(how, error, got):
    expected = r"a tensor of shape \(1, 1, 8, 2, 2\) and dtype torch.float32 on device cpu"
    refused(error, rf"noise initializer strategies\[1\] \(Chop\(\)\) must return {expected}; got .*{got}",
            strategies=[FNR(), Chop(how), DSG(beta=0.4)])  # fmt: skip


@pytest.mark.parametrize(
    ("how", "error", "got"),
    [
        (lambda x: x[:, :, 1:], ValueError, r"shape \(1, 1, 7, 2, 2\)"),
        (lambda x: x.double(), ValueError, r"dtype torch.float64"),
        (lambda x: None, TypeError, "NoneType"),
    ],
)
def test_guidance_output_is_checked(how, error, got):
    expected = r"a tensor of the latents' shape \(1, 1, 8, 2, 2\) and dtype torch.float32 on device cpu"
    where = r"\(clip 0, step 0\)"
    refused(error, rf"guidance strategies\[1\] \(Chop\(\)\) must return {expected}; got .*{got}.* {where}",
            strategies=[FNR(), Chop(how, guidance=True)])  # fmt: skip
