"""The kit's VidRD recipe in four stages (docs/DESIGN.md §6-§7), on the synthetic moving-shapes world.

1. `vae`: a tiny AutoencoderKL on still shapes; its latent scaling factor is set from the data.
2. `t2i`: a tiny text-to-image UNet and the word-level text encoder on still shapes (the stand-in for
   Stable Diffusion), v-prediction on a zero-terminal-SNR schedule (`models.tiny.TINY_SCHEDULER`),
   10% empty captions for classifier-free guidance.
3. `temporal`: the UNet inflated to a VidRDUNet; only temporal layers train, end to end on videos and,
   optionally, pseudo-videos (random zoom and pan of stills, the paper's Table 3 ablation).
4. `temporal_vae`: the VAE decoder's Temp-Conv layers, on video reconstruction (encoder frozen).

Each stage reads the previous stages' folders under `out/` (`NEEDS`, loaded strictly), trains with
`loop.train` (resumable; its checkpoint records the stage, the loop config and the recipe fields of
`IDENTITY`, and refuses a resume where any differs) and writes its own folders, each atomically
(`MAKES`): `out/vae/vae`, `out/t2i/{unet,text_encoder}`, `out/temporal/unet`, `out/temporal_vae/vae`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from torch import nn

from ..bundled import BUNDLED_WORLD
from ..data.pseudo_video import ZoomPan
from ..data.worlds import WORLDS, World, make_world
from ..files import atomic_folder
from ..loading import load_folder
from ..temporal_vae import TemporalVAE
from ..text import WordEncoder, unknown_words
from ..tiny import TINY_SCHEDULER, TINY_UNET2D, tiny_unet2d, tiny_vae
from ..vidrd_unet import VidRDUNet
from .loop import LoopConfig, plot_losses, train


@dataclass(frozen=True)
class RecipeConfig:
    out: Path  # run folder: one sub-folder per stage
    seed: int = 0  # seeds every stage (offset per stage)
    num_frames: int = 8  # N: frames per training clip
    world: str = BUNDLED_WORLD  # the training world, a key of models.data.worlds.WORLDS
    pseudo_videos: bool = True  # mix pseudo-videos into the temporal stage (Table 3: with vs without)
    pseudo_fraction: float = 0.25  # share of pseudo-videos in a temporal batch when enabled
    cfg_dropout: float = 0.1  # share of empty captions in t2i and temporal batches
    train_text_encoder: bool = False  # also train the word encoder in the temporal stage (see below)
    temporal_text_attention: bool = False  # add VidRDUNet's TemporalTextAttention (beyond the paper)
    device: str = "cuda" if torch.cuda.is_available() else "cpu"  # models and batches live here; the
    # generator stays on the CPU, so a run draws the same numbers on either device
    progress: bool = True  # tqdm bars

    def __post_init__(self) -> None:
        if self.world not in WORLDS:
            raise ValueError(f"world must be one of {tuple(WORLDS)}; got {self.world!r}")


# steps, batch, learning rate, checkpoint interval of each stage
STAGES = {
    "vae": LoopConfig(steps=800, lr=1e-3, checkpoint_every=200),
    "t2i": LoopConfig(steps=2500, lr=5e-4, checkpoint_every=250),
    "temporal": LoopConfig(steps=2520, lr=5e-4, checkpoint_every=100),
    "temporal_vae": LoopConfig(steps=150, lr=5e-4, checkpoint_every=50),
}
BATCH = {"vae": 64, "t2i": 64, "temporal": 8, "temporal_vae": 8}
# The folders under `out/` each stage reads, and those it writes.
NEEDS = {"vae": (), "t2i": ("vae/vae",), "temporal": ("vae/vae", "t2i/unet", "t2i/text_encoder"),
         "temporal_vae": ("vae/vae",)}  # fmt: skip
MAKES = {"vae": ("vae/vae",), "t2i": ("t2i/unet", "t2i/text_encoder"), "temporal": ("temporal/unet",),
         "temporal_vae": ("temporal_vae/vae",)}  # fmt: skip
# The RecipeConfig fields that shape each stage's training: a checkpoint resumes only where they are equal.
IDENTITY = {
    "vae": ("seed", "num_frames", "world"),
    "t2i": ("seed", "num_frames", "world", "cfg_dropout"),
    "temporal": ("seed", "num_frames", "world", "pseudo_videos", "pseudo_fraction", "cfg_dropout",
                 "train_text_encoder", "temporal_text_attention"),
    "temporal_vae": ("seed", "num_frames", "world"),
}  # fmt: skip


def identity(recipe: RecipeConfig, stage: str) -> dict[str, Any]:
    """What a checkpoint of `stage` must have been trained with to be resumed: its recipe fields, batch."""
    return {**{name: getattr(recipe, name) for name in IDENTITY[stage]}, "batch": BATCH[stage]}


def save_model(model, folder: Path) -> Path:
    """`model.save_pretrained(folder)`, all or nothing (built beside it, then swapped in)."""
    with atomic_folder(folder) as tmp:
        model.save_pretrained(tmp)
    return folder


def recipe_world(recipe: RecipeConfig) -> World:
    return make_world(recipe.world, recipe.num_frames)


def check_vocabulary(text: WordEncoder, world: World, recipe: RecipeConfig) -> None:
    """ValueError unless the stage-1 text encoder knows every word of the world's captions (a run whose
    t2i stage was trained on another world)."""
    missing = unknown_words(text, world.words)
    if missing:
        raise ValueError(
            f"world={recipe.world!r}: the text encoder of {recipe.out / 't2i'} does not know {missing}; it "
            f"was trained on another world: train t2i again with --world {recipe.world} or use that world"
        )


def drop_captions(captions: list[str], share: float, g: torch.Generator) -> list[str]:
    keep = torch.rand(len(captions), generator=g) >= share
    return [c if k else "" for c, k in zip(captions, keep.tolist(), strict=True)]


def noise_and_target(latents: torch.Tensor, scheduler, g: torch.Generator):
    """(noisy latents, timesteps, target): the target in the scheduler's `prediction_type` (epsilon or
    v_prediction)."""
    noise = torch.randn(latents.shape, generator=g).to(latents.device)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=g)
    t = t.to(latents.device)
    return scheduler.add_noise(latents, noise, t), t, training_target(scheduler, latents, noise, t)


def training_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the model learns to predict from `latents` noised with `noise` at `t`: the noise (epsilon) or
    the velocity (v_prediction), by the scheduler's `prediction_type`; ValueError for any other."""
    if scheduler.config.prediction_type == "epsilon":
        return noise
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, t)
    raise ValueError(
        f"prediction_type must be epsilon or v_prediction; got {scheduler.config.prediction_type!r}"
    )


def vae_loss(vae, batch: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Reconstruction MSE of a posterior sample (its noise from `g`) plus 1e-6 KL: images or videos (for
    5-D latents diffusers' kl() sums over dims 1-3 only, a per-row KL at a weight of almost nothing)."""
    posterior = vae.encode(batch).latent_dist
    eps = torch.randn(posterior.mean.shape, generator=g).to(batch.device)
    recon = vae.decode(posterior.mean + posterior.std * eps).sample
    return F.mse_loss(recon, batch) + 1e-6 * posterior.kl().mean()


def train_vae(recipe: RecipeConfig, loop: LoopConfig) -> Path:
    world, out = recipe_world(recipe), recipe.out / "vae"
    vae = tiny_vae(recipe.seed).to(recipe.device)

    def loss(g: torch.Generator) -> torch.Tensor:
        return vae_loss(vae, world.stills(BATCH["vae"], g)[0].to(recipe.device), g)

    losses = train("vae", vae, loss, loop, out, progress=recipe.progress, identity=identity(recipe, "vae"))
    with torch.no_grad():  # unit-variance latents for the diffusion stages
        images, _ = world.stills(256, torch.Generator().manual_seed(recipe.seed + 99))
        std = vae.encode(images.to(recipe.device)).latent_dist.mode().std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    save_model(vae, out / "vae")
    plot_losses(losses, out / "loss.png", "stage 1: VAE on still shapes")
    return out / "vae"


def _frozen_vae(recipe: RecipeConfig) -> AutoencoderKL:
    vae = load_folder(AutoencoderKL, recipe.out / "vae" / "vae")
    return vae.to(recipe.device).eval().requires_grad_(False)


def train_t2i(recipe: RecipeConfig, loop: LoopConfig) -> Path:
    world, out = recipe_world(recipe), recipe.out / "t2i"
    vae, scheduler = _frozen_vae(recipe), DDPMScheduler(**_ddpm_config())
    text = WordEncoder(vocabulary=world.words, dim=TINY_UNET2D["cross_attention_dim"], seed=recipe.seed)
    model = nn.ModuleDict({"unet": tiny_unet2d(recipe.seed), "text_encoder": text}).to(recipe.device)
    scale = vae.config.scaling_factor

    def loss(g: torch.Generator) -> torch.Tensor:
        # Half the captions name the direction, so that the text encoder learns every word: a clip's first
        # frame sits where its motion has room, so the image model learns where "moving right" starts.
        images, captions = world.stills(BATCH["t2i"], g, full_captions=0.5)
        with torch.no_grad():
            latents = vae.encode(images.to(recipe.device)).latent_dist.mode() * scale
        noisy, t, target = noise_and_target(latents, scheduler, g)
        context = model["text_encoder"].encode(drop_captions(captions, recipe.cfg_dropout, g))
        return F.mse_loss(model["unet"](noisy, t, context).sample, target)

    losses = train("t2i", model, loss, loop, out, progress=recipe.progress, identity=identity(recipe, "t2i"))
    save_model(model["unet"], out / "unet")
    save_model(model["text_encoder"], out / "text_encoder")
    plot_losses(losses, out / "loss.png", "stage 1: text-to-image UNet on still shapes")
    return out


def _ddpm_config() -> dict:
    """The training scheduler's config: the sampling one less DDIM's `set_alpha_to_one`."""
    return {k: v for k, v in TINY_SCHEDULER.items() if k != "set_alpha_to_one"}


def temporal_batch(recipe: RecipeConfig, world: World, g: torch.Generator):
    """Videos, with a share replaced by pseudo-videos (zoom/pan of a still, captioned as the still)."""
    n = BATCH["temporal"]
    n_pseudo = round(n * recipe.pseudo_fraction) if recipe.pseudo_videos else 0
    videos, captions = world.clips(n - n_pseudo, g)
    if n_pseudo:
        stills, still_captions = world.stills(n_pseudo, g)
        pseudo = ZoomPan(num_frames=recipe.num_frames)(stills, g)
        videos, captions = torch.cat([videos, pseudo]), captions + still_captions
    return videos, captions


def train_temporal(recipe: RecipeConfig, loop: LoopConfig, out_name: str = "temporal") -> Path:
    world, out = recipe_world(recipe), recipe.out / out_name
    vae, scheduler = TemporalVAE.from_vae(_frozen_vae(recipe)).eval(), DDPMScheduler(**_ddpm_config())
    unet2d = load_folder(UNet2DConditionModel, recipe.out / "t2i" / "unet")
    text = WordEncoder.from_pretrained(recipe.out / "t2i" / "text_encoder")
    check_vocabulary(text, world, recipe)
    text.requires_grad_(recipe.train_text_encoder)
    # The paper freezes CLIP. Our word encoder only ever saw stills, where a direction word can at most
    # hint at a position; with `train_text_encoder` it learns in this stage what the words mean for
    # motion (the UNet's spatial layers stay frozen either way).
    model = nn.ModuleDict({"unet": VidRDUNet.from_unet2d(
        unet2d, seed=recipe.seed + 2, temporal_text_attention=recipe.temporal_text_attention
    ).freeze_spatial(),
                           "text_encoder": text}).to(recipe.device)  # fmt: skip

    def loss(g: torch.Generator) -> torch.Tensor:
        videos, captions = temporal_batch(recipe, world, g)
        with torch.no_grad():
            latents = vae.encode(videos.to(recipe.device))  # (B, C, F, h, w), scaled
        context = text.encode(drop_captions(captions, recipe.cfg_dropout, g))
        noisy, t, target = noise_and_target(latents, scheduler, g)
        return F.mse_loss(model["unet"](noisy, t, context), target)

    losses = train(out_name, model, loss, loop, out, progress=recipe.progress,
                   identity=identity(recipe, "temporal"))  # fmt: skip
    save_model(model["unet"], out / "unet")
    if recipe.train_text_encoder:
        save_model(text, out / "text_encoder")
    kind = "with" if recipe.pseudo_videos else "without"
    plot_losses(losses, out / "loss.png", f"stage 2: temporal layers, videos {kind} pseudo-videos")
    return out / "unet"


def train_temporal_vae(recipe: RecipeConfig, loop: LoopConfig) -> Path:
    world, out = recipe_world(recipe), recipe.out / "temporal_vae"
    vae = TemporalVAE.from_vae(_frozen_vae(recipe)).freeze_spatial()
    vae.vae.eval()  # no dropout/batch statistics in the frozen image VAE

    def loss(g: torch.Generator) -> torch.Tensor:
        videos = world.clips(BATCH["temporal_vae"], g)[0].to(recipe.device)
        with torch.no_grad():
            latents = vae.encode(videos)
        return F.mse_loss(vae.decode(latents), videos)

    losses = train("temporal_vae", vae, loss, loop, out, progress=recipe.progress,
                   identity=identity(recipe, "temporal_vae"))  # fmt: skip
    save_model(vae, out / "vae")
    plot_losses(losses, out / "loss.png", "stage 3: temporal VAE decoder on videos")
    return out / "vae"
