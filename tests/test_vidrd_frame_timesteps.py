"""One timestep per frame on the reference VidRD backbone: frames fold into the batch of its 2-D layers,
each with its own time embedding. Checked against per-timestep calls of the same model, and FIFO and the
windowed sampler run on it through classifier-free guidance."""

from __future__ import annotations

import pytest
import torch

from models.adapters import VidRDDenoiser
from models.tiny import tiny_pipeline
from samplers import FIFO, ClassifierFreeGuidance, ContextWindows, WindowedSampler
from samplers.protocols import takes_frame_timesteps


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(seed=0)


def latents_and_text(pipe, frames=4):
    latents = torch.randn(pipe.clip_shape(2, frames), generator=torch.Generator().manual_seed(0))
    return latents, pipe.text_encoder.encode(["a red circle moving right", "a blue square moving up"])


@torch.no_grad()
def test_equal_frame_timesteps_are_the_shared_timestep(pipe):
    latents, text = latents_and_text(pipe)
    shared = pipe.unet(latents, torch.tensor(500), text)
    assert torch.equal(pipe.unet(latents, torch.full((2, 4), 500), text), shared)


@torch.no_grad()
def test_each_frame_gets_its_own_time_embedding(pipe):
    # with the temporal layers off the model is the image UNet per frame: frame j at timestep t_j is frame
    # j of a call with every frame at t_j. Swapping the timesteps of two frames, or giving video 0's row to
    # video 1, would break it.
    latents, text = latents_and_text(pipe)
    unet = pipe.unet
    unet.use_temporal_conv = unet.use_temporal_attention = False
    try:
        t = torch.tensor([[999, 700, 300, 10], [50, 400, 800, 950]])
        out = unet(latents, t, text)
        for b in range(2):
            for j in range(4):
                alone = unet(latents, t[b, j], text)
                torch.testing.assert_close(out[b, :, j], alone[b, :, j], rtol=0, atol=1e-6)
    finally:
        unet.use_temporal_conv = unet.use_temporal_attention = True


def test_the_adapter_and_cfg_declare_and_pass_frame_timesteps(pipe):
    denoiser = VidRDDenoiser(pipe.unet)
    cfg = ClassifierFreeGuidance(denoiser, 7.5)
    assert takes_frame_timesteps(denoiser) and takes_frame_timesteps(cfg)
    latents, text = latents_and_text(pipe)
    uncond = {"encoder_hidden_states": pipe.text_encoder.encode(["", ""])}
    cond = {"encoder_hidden_states": text}
    with torch.no_grad():
        per_video = cfg(latents, torch.tensor([[600] * 4] * 2), cond=cond, uncond=uncond)
        one = cfg(latents, torch.tensor([600] * 4), cond=cond, uncond=uncond)
        row = cfg(latents, torch.tensor([[600] * 4]), cond=cond, uncond=uncond)  # (1, F) for B = 2 videos
        shared = cfg(latents, torch.tensor(600), cond=cond, uncond=uncond)
    assert torch.equal(per_video, shared) and torch.equal(one, shared) and torch.equal(row, shared)
    with pytest.raises(ValueError, match=r"timestep must be one number, \(B,\) = \(2,\) one per video, or"):
        denoiser(latents, torch.tensor([1, 2, 3]), encoder_hidden_states=text)
    # (B,) stays one timestep per video, as every adapter reads it
    with torch.no_grad():
        per_video = denoiser(latents, torch.tensor([100, 900]), encoder_hidden_states=text)
        frames = denoiser(latents, torch.tensor([[100] * 4, [900] * 4]), encoder_hidden_states=text)
    assert torch.equal(per_video, frames)


@torch.no_grad()
def test_fifo_and_windows_run_on_the_model(pipe):
    text = pipe.text_encoder.encode(["a red circle moving right"])
    cond = {"cond": {"encoder_hidden_states": text},
            "uncond": {"encoder_hidden_states": pipe.text_encoder.encode([""])}}  # fmt: skip
    cfg = ClassifierFreeGuidance(pipe.denoiser, 7.5)
    shape = pipe.clip_shape(1, 10)
    fifo = FIFO(4, 1).sample(cfg, pipe.scheduler, shape, torch.Generator().manual_seed(0), **cond)
    windows = WindowedSampler(ContextWindows(4, 2)).sample(cfg, pipe.scheduler, shape, 3,
                                                           generator=torch.Generator().manual_seed(0),
                                                           **cond)  # fmt: skip
    for video in (fifo, windows):
        assert video.latents.shape == shape and torch.isfinite(video.latents).all()


def test_cfg_doubles_a_frame_timestep_whose_length_is_the_doubled_batch(pipe):
    # one video of F = 2 frames: CFG's doubled batch is 2 = F, so an (F,) timestep passed on as is would be
    # read as one timestep per video; it must reach the model as (2B, F)
    denoiser = VidRDDenoiser(pipe.unet)
    cfg = ClassifierFreeGuidance(denoiser, 7.5)
    latents = torch.randn(pipe.clip_shape(1, 2), generator=torch.Generator().manual_seed(1))
    cond = {"encoder_hidden_states": pipe.text_encoder.encode(["a red circle moving right"])}
    uncond = {"encoder_hidden_states": pipe.text_encoder.encode([""])}
    with torch.no_grad():
        flat = cfg(latents, torch.tensor([900, 100]), cond=cond, uncond=uncond)
        rows = cfg(latents, torch.tensor([[900, 100]]), cond=cond, uncond=uncond)
        per_video = cfg(latents, torch.tensor([900]), cond=cond, uncond=uncond)
    assert torch.equal(flat, rows) and not torch.equal(flat, per_video)
