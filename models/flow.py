"""The kit's second bundled model: a tiny Wan (a diffusers `WanPipeline`), rectified flow, long world.

    models/weights/tiny-wan/
        model_index.json            WanPipeline, as `save_pretrained` writes it
        transformer/                WanTransformer3DModel (4 blocks, 4 heads of 32)
        vae/                        AutoencoderKLWan (32x32 frames <-> 8x8 latents, time halved)
        text_encoder/, tokenizer/   a 2-layer UMT5 encoder over the world's words (word-level tokenizer)
        scheduler/                  FlowMatchEulerDiscreteScheduler (shift FLOW_SHIFT)
        generation.json             FLOW_DEFAULTS: the clip size and sampling settings it was trained for
        manifest.json               sha256 and size of every other file (models.loading)

It is what today's video LDMs are, at toy size: a causal video VAE compressing time, a DiT with 3-D
attention and caption cross-attention in every block, flow matching. `python -m models.train_flow`
trains it (models.training.flow); `load_flow` loads it through diffusers from local files only, after
checking every file against the manifest, and `models.long_pipeline.LongVideoPipeline.from_pipe` makes
it long like any other Wan.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from transformers import UMT5Config, UMT5EncoderModel

from samplers.validation import check_int, check_real

from .bundled import check_saved
from .data.long_world import world_words
from .files import atomic_folder
from .loading import MANIFEST, verify_manifest, write_manifest
from .seeding import seeded
from .tiny_diffusers.tokenizer import word_tokenizer

BUNDLED_FLOW = Path(__file__).resolve().parent / "weights" / "tiny-wan"
FLOW_COMMAND = "python -m models.train_flow --out runs/flow --bundle models/weights/tiny-wan"
GENERATION_FILE = "generation.json"
FLOW_WORLD = "long"  # the world (models.data.worlds) the flow bundle is trained on
FLOW_SHIFT = 3.0  # the scheduler's timestep shift (Wan 2.1 480p's flow_shift); training draws sigmas alike
TEXT_DIM = 32
MAX_SEQUENCE_LENGTH = 512  # WanPipeline's default: captions are zero-padded to it, in training too

FLOW_VAE: dict[str, Any] = {
    "base_dim": 16, "z_dim": 4, "dim_mult": [1, 2, 2], "num_res_blocks": 1,
    "temperal_downsample": [False, True],  # diffusers' spelling; one 2x time compression
    "scale_factor_temporal": 2, "scale_factor_spatial": 4,
}  # fmt: skip
FLOW_TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2), "num_attention_heads": 4, "attention_head_dim": 32, "in_channels": 4,
    "out_channels": 4, "text_dim": TEXT_DIM, "freq_dim": 64, "ffn_dim": 256, "num_layers": 4,
    "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 64,
}  # fmt: skip
FLOW_TEXT: dict[str, Any] = {"d_model": TEXT_DIM, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
                             "dropout_rate": 0.0}  # fmt: skip


@dataclass(frozen=True)
class FlowDefaults:
    """What the bundle generates by default (`vidrd generate --model`): its training clip and size."""

    num_frames: int = 9  # pixel frames per clip: 5 latent frames (2k + 1 with the VAE's 2x in time), the
    # VAE stage's clip length, so that no decode reaches past what its causal cache was trained on
    height: int = 32
    width: int = 32
    num_inference_steps: int = 25
    guidance_scale: float = 5.0

    def __post_init__(self) -> None:
        for name in ("num_frames", "height", "width", "num_inference_steps"):
            check_int(name, getattr(self, name), 1)
        check_real("guidance_scale", self.guidance_scale, 0.0, 1e6)


FLOW_DEFAULTS = FlowDefaults()


def flow_vocabulary() -> tuple[str, ...]:
    return tuple(world_words())


def flow_vae(seed: int = 0) -> AutoencoderKLWan:
    """An untrained VAE; `latents_mean`/`latents_std` are set from data after training."""
    with seeded(seed):
        return AutoencoderKLWan(**FLOW_VAE, latents_mean=[0.0] * 4, latents_std=[1.0] * 4)


def flow_transformer(seed: int = 0) -> WanTransformer3DModel:
    with seeded(seed):
        return WanTransformer3DModel(**FLOW_TRANSFORMER)


def flow_text_encoder(seed: int = 0) -> UMT5EncoderModel:
    vocabulary = len(word_tokenizer(flow_vocabulary()))
    with seeded(seed):
        return UMT5EncoderModel(UMT5Config(vocab_size=vocabulary, **FLOW_TEXT))


def flow_scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT)


def flow_pipeline(vae: AutoencoderKLWan, transformer: WanTransformer3DModel,
                  text_encoder: UMT5EncoderModel) -> WanPipeline:  # fmt: skip
    """A WanPipeline of the kit's parts, with the world's word-level tokenizer."""
    pipe = WanPipeline(tokenizer=word_tokenizer(flow_vocabulary()), text_encoder=text_encoder,
                       transformer=transformer, vae=vae, scheduler=flow_scheduler())  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def caption_embeds(tokenizer, text_encoder, captions: list[str],
                   length: int = MAX_SEQUENCE_LENGTH) -> torch.Tensor:  # fmt: skip
    """(B, length, TEXT_DIM): each caption's token states, zero past its last token, as
    `WanPipeline.encode_prompt` makes them, but with gradients (the text encoder trains with the
    transformer) and faster: the encoder runs on the batch's longest caption, not on `length` tokens of
    padding that its attention mask hides anyway (equal to the pipeline's to float rounding,
    tests/test_flow_bundle.py)."""
    tokens = tokenizer(captions, padding="longest", max_length=length, truncation=True,
                       add_special_tokens=True, return_attention_mask=True, return_tensors="pt")  # fmt: skip
    device = text_encoder.device
    mask = tokens.attention_mask.to(device)
    states = text_encoder(tokens.input_ids.to(device), mask).last_hidden_state
    states = states * mask.unsqueeze(-1).to(states.dtype)
    return torch.nn.functional.pad(states, (0, 0, 0, length - states.shape[1]))


def write_defaults(folder: Path, defaults: FlowDefaults = FLOW_DEFAULTS) -> None:
    (folder / GENERATION_FILE).write_text(json.dumps(dataclasses.asdict(defaults), indent=2) + "\n")


def read_defaults(folder: str | os.PathLike) -> FlowDefaults | None:
    """The bundle's generation defaults, or None for a pipeline folder without them (not the kit's)."""
    file = Path(folder) / GENERATION_FILE
    if not file.is_file():
        return None
    try:
        return FlowDefaults(**json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{file} is damaged ({error}): it must hold the fields of models.flow.FlowDefaults; "
                         f"{flow_remedy(folder)}") from error  # fmt: skip


def flow_remedy(path: str | os.PathLike) -> str:
    if Path(path).resolve() == BUNDLED_FLOW.resolve():
        return f"reinstall the kit or restore {path} from its repository, or regenerate it: {FLOW_COMMAND}"
    return f"regenerate it: python -m models.train_flow --out RUN --bundle {path}"


def save_flow(pipe: WanPipeline, path: str | os.PathLike) -> Path:
    """`pipe.save_pretrained` with the generation defaults and a manifest, all or nothing; the folder is
    loaded back and its weights compared with `pipe`'s before it replaces `path`."""
    root = Path(path)
    with atomic_folder(root) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        write_defaults(tmp)
        write_manifest(tmp)
        check_saved(pipe, load_flow(tmp), tmp, ("transformer", "vae", "text_encoder"))
    return root


def load_flow(path: str | os.PathLike = BUNDLED_FLOW) -> WanPipeline:
    """The bundle at `path`, every file checked against its manifest, loaded from local files only."""
    root = Path(path)
    if not (root / MANIFEST).is_file():
        raise FileNotFoundError(f"the flow bundle at {root} lacks {root / MANIFEST}; {flow_remedy(root)}")
    verify_manifest(root, flow_remedy(root))
    with quiet_loading():
        pipe = WanPipeline.from_pretrained(root, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Diffusers' and transformers' per-part loading bars off for the block (a CLI prints its own)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    modules = [m for m in (diffusers_logging, transformers_logging) if m.is_progress_bar_enabled()]
    for module in modules:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module in modules:
            module.enable_progress_bar()
