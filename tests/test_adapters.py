"""Backbone adapters against direct calls of tiny random diffusers video UNets (nothing downloaded)."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    MotionAdapter,
    UNet3DConditionModel,
    UNetMotionModel,
)

from models import GaussianVideoPrior
from models.adapters import (
    CallableDenoiser,
    ModuleDenoiser,
    MotionDenoiser,
    UNet3DDenoiser,
    VidRDDenoiser,
    denoiser_for,
)
from models.tiny import tiny_unet2d
from models.vidrd_unet import VidRDUNet
from samplers import DSG, FNR, PNS, ClassifierFreeGuidance, LongVideoSampler, VideoDenoiser

B, C, F, H, W, S, D = 2, 4, 3, 8, 8, 5, 32


def _unet3d() -> UNet3DConditionModel:
    return UNet3DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        sample_size=8,
        in_channels=4,
        out_channels=4,
    )


def _motion() -> UNetMotionModel:
    adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_num_attention_heads=2,
        motion_norm_num_groups=8,
        motion_max_seq_length=32,
    )
    return UNetMotionModel.from_unet2d(tiny_unet2d(), motion_adapter=adapter)


def _vidrd() -> VidRDUNet:
    return VidRDUNet.from_unet2d(tiny_unet2d())


def _build(factory):
    """A random model with a fixed seed, without touching the global RNG; non-zero temporal/motion output
    projections (zero at initialisation in all three families) so time mixing is exercised too."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = factory().eval()
        with torch.no_grad():
            for p in model.parameters():
                if not p.any():
                    p.normal_(0.0, 0.05)
    return model


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {"vidrd": _build(_vidrd), "unet3d": _build(_unet3d), "motion": _build(_motion)}


def _direct(name: str, model, latents, timesteps, text) -> torch.Tensor:
    """The model called by hand in its documented layout (timesteps (B,), text (B, S, D))."""
    with torch.no_grad():
        if name == "vidrd":
            return model(latents, timesteps, text)
        if name == "unet3d":
            return model(latents, timesteps, encoder_hidden_states=text).sample
        # UNetMotionModel: (B, C, F, H, W) sample, text repeated per frame as AnimateDiffPipeline does
        context = text.repeat_interleave(latents.shape[2], dim=0)
        return model(latents, timesteps, encoder_hidden_states=context).sample


def _inputs(seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(B, C, F, H, W, generator=g, dtype=dtype)
    text = torch.randn(B, S, D, generator=g, dtype=dtype)
    return latents, text


ADAPTER = {"vidrd": VidRDDenoiser, "unet3d": UNet3DDenoiser, "motion": MotionDenoiser}
FAMILIES = sorted(ADAPTER)


@pytest.mark.parametrize("name", FAMILIES)
def test_adapter_equals_the_direct_call(models, name):
    model = models[name]
    denoiser = ADAPTER[name](model)
    assert isinstance(denoiser, VideoDenoiser)
    latents, text = _inputs(1)
    out = denoiser(latents, torch.tensor(500), encoder_hidden_states=text)
    assert out.shape == latents.shape and out.dtype == latents.dtype
    expected = _direct(name, model, latents, torch.tensor([500, 500]), text)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert out.abs().mean() > 1e-3  # a real output, not zeros


@pytest.mark.parametrize("name", FAMILIES)
def test_float64_latents_with_a_float32_model_come_back_float64(models, name):
    model = models[name]
    latents, text = _inputs(2, torch.float64)
    out = ADAPTER[name](model)(latents, torch.tensor(250), encoder_hidden_states=text)
    assert out.dtype == torch.float64 and out.shape == latents.shape
    assert next(model.parameters()).dtype == torch.float32  # the model was not converted
    expected = _direct(name, model, latents.float(), torch.tensor([250, 250]), text.float()).double()
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


TIMESTEPS = {
    "0-d int tensor": torch.tensor(700),
    "1-element int tensor": torch.tensor([700]),
    "int": 700,
    "0-d float tensor": torch.tensor(700.0),
    "1-element float tensor": torch.tensor([700.0]),
    "float": 700.0,
}


@pytest.mark.parametrize("name", FAMILIES)
def test_timestep_is_broadcast_to_the_batch(models, name):
    model = models[name]
    latents, text = _inputs(3)
    expected = _direct(name, model, latents, torch.full((B,), 700), text)
    for form, timestep in TIMESTEPS.items():
        out = ADAPTER[name](model)(latents, timestep, encoder_hidden_states=text)
        # the sinusoidal time embedding is the same for 700 and 700.0 up to float round-off
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6, msg=lambda m, f=form: f"{f}: {m}")


@pytest.mark.parametrize("name", FAMILIES)
def test_per_sample_timesteps_pass_through_and_a_wrong_count_is_refused(models, name):
    model = models[name]
    latents, text = _inputs(4)
    denoiser = ADAPTER[name](model)
    timesteps = torch.tensor([100, 900])
    out = denoiser(latents, timesteps, encoder_hidden_states=text)
    torch.testing.assert_close(out, _direct(name, model, latents, timesteps, text), rtol=0, atol=0)
    with pytest.raises(ValueError, match="timestep"):  # 5: neither B = 2 videos nor F = 3 frames
        denoiser(latents, torch.tensor([1, 2, 3, 4, 5]), encoder_hidden_states=text)


@pytest.mark.parametrize("name", FAMILIES)
def test_classifier_free_guidance_is_one_batched_call(models, name):
    model = models[name]
    denoiser = ADAPTER[name](model)
    latents, text = _inputs(5)
    _, negative = _inputs(6)
    batches = []
    handle = model.register_forward_pre_hook(lambda _m, args: batches.append(args[0].shape[0]))
    try:
        out = ClassifierFreeGuidance(denoiser, 7.5)(
            latents,
            torch.tensor(300),
            cond={"encoder_hidden_states": text},
            uncond={"encoder_hidden_states": negative},
        )
    finally:
        handle.remove()
    assert batches == [2 * B]
    assert out.shape == latents.shape
    t = torch.tensor(300)
    positive = denoiser(latents, t, encoder_hidden_states=text)
    uncond = denoiser(latents, t, encoder_hidden_states=negative)
    torch.testing.assert_close(out, uncond + 7.5 * (positive - uncond), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", [*FAMILIES, "prior"])
def test_the_paper_sampler_runs_unchanged_on_every_backbone(models, name):
    sampler = LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)], prompt_frames=1, progress=False)
    scheduler = DDIMScheduler(clip_sample=False)
    _, text = _inputs(7)
    if name == "prior":  # the analytic backbone: unconditional
        denoiser, cond = GaussianVideoPrior(num_frames=F, frame_shape=(C, H, W)).denoiser(scheduler), {}
    else:
        denoiser = ClassifierFreeGuidance(denoiser_for(models[name]), 5.0)
        cond = {
            "cond": {"encoder_hidden_states": text},
            "uncond": {"encoder_hidden_states": torch.zeros_like(text)},
        }
    video = sampler.sample(denoiser, scheduler, (B, C, F, H, W), num_clips=3, num_inference_steps=5,
                           generator=torch.Generator().manual_seed(0), **cond)  # fmt: skip
    assert video.latents.shape == (B, C, 3 * F, H, W) and video.clip_starts == [0, F, 2 * F]
    assert torch.isfinite(video.latents).all()


def test_callable_denoiser_passes_through():
    calls = []

    def fn(latents, timestep, **cond):
        calls.append((timestep, cond))
        return latents * 2

    latents, _ = _inputs(8, torch.float64)
    out = CallableDenoiser(fn)(latents, 5, scale="x")
    assert out.dtype == torch.float64 and out.shape == latents.shape
    torch.testing.assert_close(out, latents * 2, rtol=0, atol=0)
    assert calls == [(5, {"scale": "x"})]  # timestep and conditioning untouched
    assert isinstance(CallableDenoiser(fn), VideoDenoiser)
    with pytest.raises(TypeError, match="callable"):
        CallableDenoiser(3)


def test_denoiser_for_picks_the_adapter_by_type(models):
    for name, adapter in ADAPTER.items():
        picked = denoiser_for(models[name])
        assert type(picked) is adapter and picked.model is models[name]
        assert denoiser_for(picked) is picked  # an adapter passes through
    wrapped = CallableDenoiser(lambda latents, timestep: latents)
    assert denoiser_for(wrapped) is wrapped
    for wrong in (tiny_unet2d(), lambda latents, timestep: latents, "unet"):
        with pytest.raises(TypeError, match="VidRDUNet, UNet3DConditionModel, UNetMotionModel"):
            denoiser_for(wrong)


def test_an_adapter_refuses_the_wrong_family_and_wrong_layouts(models):
    with pytest.raises(TypeError, match="UNetMotionModel"):
        MotionDenoiser(models["unet3d"])
    denoiser = UNet3DDenoiser(models["unet3d"])
    latents, text = _inputs(9)
    with pytest.raises(ValueError, match=r"\(B, C, F, H, W\)"):
        denoiser(latents[:, :, 0], 10, encoder_hidden_states=text)
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        MotionDenoiser(models["motion"])(latents, 10, encoder_hidden_states=text[:1])
    assert issubclass(MotionDenoiser, ModuleDenoiser)


def test_an_adapter_builds_a_graph_only_for_latents_that_require_grad(models):
    denoiser = VidRDDenoiser(models["vidrd"])
    latents, text = _inputs(10)
    assert any(p.requires_grad for p in models["vidrd"].parameters())  # trainable weights: no graph anyway
    assert not denoiser(latents, 10, encoder_hidden_states=text).requires_grad
    with torch.no_grad():  # sampling under no_grad stays graph-free whatever the latents say
        graph_free = denoiser(latents.clone().requires_grad_(True), 10, encoder_hidden_states=text)
        assert not graph_free.requires_grad
    # A guidance that differentiates the x0 estimate (reconstruction guidance) gets d(output)/d(latents):
    # the directional derivative matches a central finite difference of the same adapter.
    z = latents.double().requires_grad_(True)
    denoiser64 = VidRDDenoiser(copy.deepcopy(models["vidrd"]).double())
    direction = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (grad,) = torch.autograd.grad((denoiser64(z, 10, encoder_hidden_states=text) * direction).sum(), z)
    h = 1e-6
    up = denoiser64(z.detach() + h * direction, 10, encoder_hidden_states=text)
    down = denoiser64(z.detach() - h * direction, 10, encoder_hidden_states=text)
    finite = ((up - down) * direction).sum() / (2 * h)
    torch.testing.assert_close((grad * direction).sum(), finite, rtol=1e-6, atol=1e-8)


class _PerSampleTime(torch.nn.Module):
    """A backbone that reads its timesteps one video at a time (timesteps[b]), as a call_model may: it
    needs the (B,) tensor the adapter promises, not a scalar that broadcasting would hide."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1e-3))

    def forward(self, latents, timesteps, context):
        return torch.stack([latents[b] * self.scale * timesteps[b] for b in range(latents.shape[0])])


class _PerSampleTimeDenoiser(ModuleDenoiser):
    model_type = _PerSampleTime

    def call_model(self, latents, timesteps, context, **kw):
        return self.model(latents, timesteps, context)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_backbone_receives_one_timestep_per_video(models, name):
    # The diffusers UNets broadcast a scalar themselves, so their outputs cannot show whether the adapter
    # did; what they receive can. Every scalar form reaches the model as the (B,) tensor [700, 700].
    model = models[name]
    received = []
    handle = model.register_forward_pre_hook(lambda _m, args: received.append(args[1]))
    latents, text = _inputs(11)
    try:
        for timestep in TIMESTEPS.values():
            ADAPTER[name](model)(latents, timestep, encoder_hidden_states=text)
    finally:
        handle.remove()
    assert len(received) == len(TIMESTEPS)
    for t in received:
        assert isinstance(t, torch.Tensor) and t.shape == (B,) and t.tolist() == [700, 700], t


def test_a_scalar_timestep_equals_the_timestep_repeated_per_video():
    denoiser = _PerSampleTimeDenoiser(_PerSampleTime())
    latents, _ = _inputs(12)
    text = torch.zeros(B, S, D)
    repeated = denoiser(latents, torch.tensor([300, 300]), encoder_hidden_states=text)
    torch.testing.assert_close(repeated, latents * 0.3, rtol=1e-6, atol=0)
    for timestep in (300, 300.0, torch.tensor(300), torch.tensor([300])):
        torch.testing.assert_close(denoiser(latents, timestep, encoder_hidden_states=text), repeated,
                                   rtol=1e-6, atol=0)  # fmt: skip
    per_sample = denoiser(latents, torch.tensor([100, 900]), encoder_hidden_states=text)
    torch.testing.assert_close(per_sample, latents * torch.tensor([0.1, 0.9]).view(B, 1, 1, 1, 1),
                               rtol=1e-6, atol=0)  # fmt: skip


def test_vidrd_adapter_equals_the_image_unet_frame_by_frame():
    # An independent reference, not the wrapped model's own forward: with its temporal layers switched off
    # a VidRDUNet is its image UNet applied to every frame of every video at that video's timestep.
    unet2d = tiny_unet2d().eval()
    model = VidRDUNet.from_unet2d(unet2d).eval()
    model.use_temporal_conv = model.use_temporal_attention = False
    latents, text = _inputs(13)
    for timestep, per_video in ((torch.tensor(400), [400, 400]), (torch.tensor([100, 900]), [100, 900])):
        out = VidRDDenoiser(model)(latents, timestep, encoder_hidden_states=text)
        with torch.no_grad():
            expected = torch.stack([
                torch.stack([unet2d(latents[b : b + 1, :, f], per_video[b], text[b : b + 1]).sample[0]
                             for f in range(F)], 1)
                for b in range(B)
            ])  # fmt: skip
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
