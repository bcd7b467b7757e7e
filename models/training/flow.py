"""The recipe of the kit's tiny Wan (models.flow), on the long world, in two stages.

1. `vae`: AutoencoderKLWan on 9-frame clips (its encoder takes a clip as the first frame alone, then
   chunks of 4 that read the previous chunk's cached features: nine frames hold every kind), MSE plus a
   tiny KL. Then `latents_mean`/`latents_std`,
   per channel, from clips of the bundle's length, so that the transformer sees unit-variance latents
   and WanPipeline's decode (latents * std + mean) undoes it.
2. `transformer`: the VAE frozen; `FlowRecipe.clips` clips of `FLOW_DEFAULTS.num_frames` frames
   encoded once (posterior means, normalised); the transformer and the T5 encoder trained together by
   rectified flow: x_s = (1 - s) x_0 + s e with target e - x_0 (what FlowMatchEulerDiscreteScheduler
   steps with), s uniform then shifted as the scheduler shifts its sigmas, timestep 1000 s; a share of
   empty captions for classifier-free guidance (WanPipeline's negative prompt is "").

Each stage resumes from its checkpoint (models.training.loop) and writes its folders atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from einops import rearrange
from torch import nn
from transformers import UMT5EncoderModel

from ..data.worlds import make_world
from ..flow import (
    FLOW_DEFAULTS,
    FLOW_SHIFT,
    FLOW_WORLD,
    MAX_SEQUENCE_LENGTH,
    caption_embeds,
    flow_pipeline,
    flow_text_encoder,
    flow_transformer,
    flow_vae,
    flow_vocabulary,
)
from ..loading import file_record
from ..tiny_diffusers.tokenizer import word_tokenizer
from .loop import LoopConfig, plot_losses, train
from .stages import drop_captions, save_model, vae_loss

# The VAE stage's clip is the bundle's: the first frame and two 4-frame chunks (the second reads the
# first one's cached features)
VAE_FRAMES = FLOW_DEFAULTS.num_frames


@dataclass(frozen=True)
class FlowRecipe:
    out: Path  # run folder: vae/, transformer/
    seed: int = 0
    clips: int = 4096  # clips the transformer stage encodes once and draws its batches from
    cfg_dropout: float = 0.1
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    progress: bool = True


FLOW_STAGES = {
    "vae": LoopConfig(steps=1200, lr=1e-3, checkpoint_every=100),
    "transformer": LoopConfig(steps=4000, lr=5e-4, checkpoint_every=250),
}
FLOW_BATCH = {"vae": 8, "transformer": 16}
FLOW_NEEDS = {"vae": (), "transformer": ("vae/vae",)}
VAE_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
FLOW_MAKES = {"vae": ("vae/vae",), "transformer": ("transformer/transformer", "transformer/text_encoder")}


def _identity(recipe: FlowRecipe, stage: str) -> dict[str, Any]:
    """What a checkpoint of `stage` must have been trained with to be resumed; for the transformer, the
    VAE's files too (another VAE is another latent space)."""
    fields = {"seed": recipe.seed, "batch": FLOW_BATCH[stage]}
    if stage == "vae":
        return {**fields, "frames": VAE_FRAMES}
    vae = recipe.out / "vae" / "vae"
    return {**fields, "clips": recipe.clips, "cfg_dropout": recipe.cfg_dropout, "shift": FLOW_SHIFT,
            "frames": FLOW_DEFAULTS.num_frames, "text_length": MAX_SEQUENCE_LENGTH,
            "vae": {name: file_record(vae / name)["sha256"] for name in VAE_FILES}}  # fmt: skip


def train_flow_vae(recipe: FlowRecipe, loop: LoopConfig) -> Path:
    world, out = make_world(FLOW_WORLD, VAE_FRAMES), recipe.out / "vae"
    vae = flow_vae(recipe.seed).to(recipe.device)

    def loss(g: torch.Generator) -> torch.Tensor:
        return vae_loss(vae, world.clips(FLOW_BATCH["vae"], g)[0].to(recipe.device), g)

    losses = train("flow_vae", vae, loss, loop, out, progress=recipe.progress,
                   identity=_identity(recipe, "vae"))  # fmt: skip
    mean, std = latent_statistics(vae.eval(), recipe)
    vae.register_to_config(latents_mean=mean, latents_std=std)
    save_model(vae, out / "vae")
    plot_losses(losses, out / "loss.png", "flow stage 1: Wan VAE on long-world clips")
    return out / "vae"


@torch.no_grad()
def latent_statistics(vae: AutoencoderKLWan, recipe: FlowRecipe, count: int = 64) -> tuple[list, list]:
    """Per-channel mean and standard deviation of the posterior means of `count` bundle-length clips."""
    world = make_world(FLOW_WORLD, FLOW_DEFAULTS.num_frames)
    videos = world.clips(count, torch.Generator().manual_seed(recipe.seed + 99))[0].to(recipe.device)
    latents = rearrange(vae.encode(videos).latent_dist.mean, "b c f h w -> c (b f h w)")
    return latents.mean(1).tolist(), latents.std(1).tolist()


def normalise(latents: torch.Tensor, vae: AutoencoderKLWan) -> torch.Tensor:
    """(z - latents_mean) / latents_std per channel: what WanPipeline's decode inverts."""
    mean, std = (torch.tensor(v, device=latents.device).view(1, -1, 1, 1, 1)
                 for v in (vae.config.latents_mean, vae.config.latents_std))  # fmt: skip
    return (latents - mean) / std


@torch.no_grad()
def encoded_clips(vae: AutoencoderKLWan, recipe: FlowRecipe) -> tuple[torch.Tensor, list[str]]:
    """The stage's fixed training set: `recipe.clips` clips (seeded), encoded and normalised."""
    world = make_world(FLOW_WORLD, FLOW_DEFAULTS.num_frames)
    g = torch.Generator().manual_seed(recipe.seed + 7)
    latents, captions = [], []
    for start in range(0, recipe.clips, 64):
        videos, texts = world.clips(min(64, recipe.clips - start), g)
        latents.append(normalise(vae.encode(videos.to(recipe.device)).latent_dist.mean, vae))
        captions += texts
    return torch.cat(latents), captions


def shifted_sigmas(u: torch.Tensor, shift: float = FLOW_SHIFT) -> torch.Tensor:
    """The scheduler's shift of sigma: shift s / (1 + (shift - 1) s)."""
    return shift * u / (1 + (shift - 1) * u)


def flow_pair(latents: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_s, timesteps 1000 s, target e - x_0) for clean latents (B, C, F, h, w)."""
    noise = torch.randn(latents.shape, generator=g).to(latents.device)
    sigma = shifted_sigmas(torch.rand(latents.shape[0], generator=g)).to(latents.device)
    s = sigma.view(-1, 1, 1, 1, 1)
    return (1 - s) * latents + s * noise, sigma * 1000, noise - latents


def train_flow_transformer(recipe: FlowRecipe, loop: LoopConfig) -> Path:
    out = recipe.out / "transformer"
    vae = AutoencoderKLWan.from_pretrained(recipe.out / "vae" / "vae").to(recipe.device).eval()
    latents, captions = encoded_clips(vae, recipe)
    tokenizer = word_tokenizer(flow_vocabulary())
    model = nn.ModuleDict({"transformer": flow_transformer(recipe.seed + 1),
                           "text_encoder": flow_text_encoder(recipe.seed + 2)}).to(recipe.device)  # fmt: skip

    def loss(g: torch.Generator) -> torch.Tensor:
        pick = torch.randint(len(captions), (FLOW_BATCH["transformer"],), generator=g)
        texts = drop_captions([captions[i] for i in pick.tolist()], recipe.cfg_dropout, g)
        context = caption_embeds(tokenizer, model["text_encoder"], texts)
        noisy, t, target = flow_pair(latents[pick.to(latents.device)], g)
        prediction = model["transformer"](hidden_states=noisy, timestep=t, encoder_hidden_states=context,
                                          return_dict=False)[0]  # fmt: skip
        return F.mse_loss(prediction, target)

    losses = train("flow_transformer", model, loss, loop, out, progress=recipe.progress,
                   identity=_identity(recipe, "transformer"))  # fmt: skip
    save_model(model["transformer"], out / "transformer")
    save_model(model["text_encoder"], out / "text_encoder")
    plot_losses(losses, out / "loss.png", "flow stage 2: Wan transformer by rectified flow")
    return out


def assemble_flow(out: Path):
    """The trained WanPipeline from a run folder."""
    return flow_pipeline(
        vae=AutoencoderKLWan.from_pretrained(out / "vae" / "vae").eval(),
        transformer=WanTransformer3DModel.from_pretrained(out / "transformer" / "transformer").eval(),
        text_encoder=UMT5EncoderModel.from_pretrained(out / "transformer" / "text_encoder").eval(),
    )
