"""TemporalVAE (docs/DESIGN.md §6): identity at initialisation, temporal mixing, training, save/load."""

from __future__ import annotations

import math
import os

import pytest
import torch
from diffusers import AutoencoderKL
from einops import rearrange

from models.temporal import find_blocks
from models.temporal_vae import TemporalVAE

TINY_VAE = {
    "block_out_channels": (8, 16),
    "down_block_types": ("DownEncoderBlock2D",) * 2,
    "up_block_types": ("UpDecoderBlock2D",) * 2,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 16,
    "layers_per_block": 1,
}
SIZE = 16  # frames are SIZE x SIZE RGB; latents SIZE / 2


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter from a seeded generator (fan-in scaled), leaving the global RNG out of it."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() > 1:
                p.copy_(noise / math.sqrt(p[0].numel()))
            else:  # 1-D weights are norm scales (around 1), the rest biases (around 0)
                p.copy_(noise * 0.1 + float(name.endswith("weight")))


@pytest.fixture
def vae() -> AutoencoderKL:
    model = AutoencoderKL(**TINY_VAE)
    _randomise(model, seed=0)
    return model.eval()


def _frames(batch: int, num_frames: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, num_frames, SIZE, SIZE, generator=g) * 2 - 1


def _latents(batch: int, num_frames: int, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 4, num_frames, SIZE // 2, SIZE // 2, generator=g)


def _perturbed(vae: AutoencoderKL) -> TemporalVAE:
    model = TemporalVAE.from_vae(vae)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.temporal_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def test_from_vae_copies_weights_exactly(vae):
    model = TemporalVAE.from_vae(vae)
    source = vae.state_dict()
    assert model.vae.state_dict().keys() == source.keys()
    assert all(torch.equal(t, source[k]) for k, t in model.vae.state_dict().items())
    assert model.dtype == vae.dtype and model.device == vae.device and model.training == vae.training


@torch.no_grad()
def test_identity_at_initialisation(vae):
    model = TemporalVAE.from_vae(vae)
    assert len(model.temporal_convs) > 0
    z = _latents(2, 5)
    scale = vae.config.scaling_factor
    per_frame = torch.stack([vae.decode(z[:, :, f] / scale).sample for f in range(z.shape[2])], dim=2)
    decoded = model.decode(z)
    assert decoded.shape == (2, 3, 5, SIZE, SIZE)
    assert (decoded - per_frame).abs().max() < 1e-5

    frames = _frames(2, 5)
    means = torch.stack([vae.encode(frames[:, :, f]).latent_dist.mode() for f in range(5)], dim=2)
    encoded = model.encode(frames)
    assert encoded.shape == (2, 4, 5, SIZE // 2, SIZE // 2)
    assert (encoded - means * scale).abs().max() < 1e-5


@torch.no_grad()
def test_encode_samples_with_a_generator(vae):
    model = TemporalVAE.from_vae(vae)
    frames = _frames(1, 3)
    first = model.encode(frames, generator=torch.Generator().manual_seed(7))
    again = model.encode(frames, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, again)
    assert not torch.allclose(first, model.encode(frames))
    posterior = vae.encode(rearrange(frames, "b c f h w -> (b f) c h w")).latent_dist
    expected = posterior.sample(generator=torch.Generator().manual_seed(7)) * vae.config.scaling_factor
    assert (first - rearrange(expected, "(b f) c h w -> b c f h w", f=3)).abs().max() < 1e-5


@torch.no_grad()
def test_temporal_convs_mix_neighbouring_frames_only(vae):
    model = _perturbed(vae)
    stacked = len(find_blocks(model.vae.decoder, ["ResnetBlock2D"]))  # each Temp-Conv reaches one frame
    assert stacked == len(model.temporal_convs)
    k, num_frames = 2, 2 + stacked + 4  # frames beyond k + stacked are out of reach
    z = _latents(1, num_frames)
    changed = z.clone()
    changed[:, :, k] += 1.0
    diff = (model.decode(changed) - model.decode(z)).abs().amax(dim=(0, 1, 3, 4))
    assert diff[k] > 0 and diff[k - 1] > 1e-4 and diff[k + 1] > 1e-4
    assert torch.all(diff[k + stacked + 1 :] == 0)

    model.use_temporal_conv = False
    diff = (model.decode(changed) - model.decode(z)).abs().amax(dim=(0, 1, 3, 4))
    assert diff[k] > 0
    assert torch.all(diff[torch.arange(num_frames) != k] == 0)


@torch.no_grad()
def test_slicing_keeps_whole_videos_together(vae):
    model = _perturbed(vae)
    z = _latents(2, 4)
    full = model.decode(z)
    model.vae.enable_slicing()
    sliced = model.decode(z)
    assert model.vae.use_slicing
    assert (sliced - full).abs().max() < 1e-5


def test_training_step_changes_only_temporal_weights(vae):
    model = TemporalVAE.from_vae(vae).freeze_spatial()
    spatial = {id(p) for p in model.spatial_parameters()}
    temporal = {id(p) for p in model.temporal_parameters()}
    everything = [id(p) for p in model.parameters()]
    assert spatial.isdisjoint(temporal) and spatial | temporal == set(everything)
    assert len(spatial) + len(temporal) == len(everything)

    spatial_before = {k: v.clone() for k, v in model.vae.state_dict().items()}
    temporal_before = [p.detach().clone() for p in model.temporal_parameters()]
    # As the training loop does: every parameter that requires grad, so freeze_spatial() alone must keep
    # the image VAE out of the optimiser.
    assert not any(p.requires_grad for p in model.spatial_parameters())
    assert all(p.requires_grad for p in model.temporal_parameters())
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    target = _frames(1, 4, seed=5)
    loss = (model.decode(_latents(1, 4)) - target).pow(2).mean()
    loss.backward()
    optimiser.step()

    assert all(p.grad is None for p in model.spatial_parameters())
    assert all(torch.equal(v, spatial_before[k]) for k, v in model.vae.state_dict().items())
    after = list(model.temporal_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, temporal_before, strict=True))


def _public(config) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


@torch.no_grad()
def test_save_and_load_round_trip(vae, tmp_path):
    model = _perturbed(vae)
    model.save_pretrained(tmp_path)
    loaded = TemporalVAE.from_pretrained(tmp_path)
    assert _public(loaded.config) == _public(model.config)
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(t, loaded_state[k]) for k, t in state.items())
    z = _latents(1, 3)
    assert torch.equal(loaded.decode(z), model.decode(z))


def test_loading_without_weights_names_the_missing_file(vae, tmp_path):
    TemporalVAE.from_vae(vae).save_pretrained(tmp_path)
    os.remove(tmp_path / "diffusion_pytorch_model.safetensors")
    # The kit loads safetensors only, so the error names the file that is missing (not a pickle fallback).
    with pytest.raises(OSError, match=r"diffusion_pytorch_model\.safetensors"):
        TemporalVAE.from_pretrained(tmp_path)


def test_loading_from_a_name_that_is_not_a_folder_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"local folder written by TemporalVAE\.save_pretrained"):
        TemporalVAE.from_pretrained("stabilityai/sd-vae-ft-mse")
