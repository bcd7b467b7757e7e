"""What the kit needs of a diffusers video pipeline family: `VideoFamily`, one subclass per family.

A family turns the keyword arguments of its pipeline's `__call__` (prompt or prompt embeddings, negative
prompt, guidance, size, frame count, family extras) into a `ClipPlan`: the latent clip shape in the
kit's (B, C, F, H, W) layout, a `VideoDenoiser` that calls the transformer exactly as the pipeline's loop
does (layout, timestep convention, classifier-free guidance batching), the per-clip conditioning, and the
`samplers.Schedule` with the pipeline's own `set_timesteps` arguments. It also decodes latents the way the
pipeline does after its loop (un-normalisation, VAE), and converts between the kit's layout and the
pipeline's (`to_pipeline_layout`: what `pipe(latents=...)` takes and `output_type="latent"` returns).

Frame counts: `num_frames` counts pixel frames per clip, as the pipeline does; a causal video VAE with
temporal compression t makes F = (num_frames - 1) / t + 1 latent frames of it, so num_frames must be
k t + 1. The sampler's `prompt_frames` counts latent frames.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from samplers import Schedule
from samplers.validation import check_int, check_real

from ..stream_decode import StreamingDecoder


def no_check(latent_frames: int) -> None:
    """The default `check_frames` of `VideoFamily.plan`: nothing to check."""


@dataclass(frozen=True)
class ClipPlan:
    """Everything the sampler needs to make the clips of one call."""

    clip_shape: tuple[int, int, int, int, int]  # (B, C, F, h, w): F latent frames per clip
    denoiser: Callable[..., torch.Tensor]  # a VideoDenoiser over (B, C, F, h, w) latents
    clip_cond: Callable[[int], dict[str, Any]]  # clip i -> keyword arguments of the denoiser calls
    schedule: Schedule
    num_inference_steps: int
    device: torch.device
    dtype: torch.dtype = torch.float32  # the latents' dtype in the pipeline's loop
    # keyword arguments of the family's `decode_latents` for this call (e.g. LTX's decode timestep)
    decode_options: dict[str, Any] = field(default_factory=dict)


class VideoFamily:
    """Base of the diffusers families; subclasses set the class attributes and implement `plan`,
    `decode_latents` and, where the pipeline's layout is not the kit's, the two layout conversions."""

    pipeline_names: ClassVar[tuple[str, ...]] = ()  # the diffusers pipeline classes of the family
    pipeline_multiple: ClassVar[int] = 1  # what the pipeline's check_inputs asks of height and width

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.pipe).__name__})"

    # -- geometry --------------------------------------------------------------------------------------

    @property
    def temporal(self) -> int:
        """Pixel frames per latent frame after the first (the VAE's temporal compression)."""
        return int(self.pipe.vae_scale_factor_temporal)

    @property
    def spatial(self) -> int:
        return int(self.pipe.vae_scale_factor_spatial)

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of: the VAE's factor times the transformer's patch, and
        what the pipeline's own check_inputs asks (`pipeline_multiple`): their least common multiple."""
        return math.lcm(self.pipeline_multiple, self.spatial * int(self.patch_size))

    @property
    def patch_size(self) -> int:
        patch = self.pipe.transformer.config.patch_size
        return int(patch[-1] if isinstance(patch, (tuple, list)) else patch)

    def latent_frames(self, num_frames: int) -> int:
        """F = (num_frames - 1) / t + 1; ValueError naming the nearest valid counts otherwise."""
        check_int("num_frames", num_frames, 1)
        t = self.temporal
        if (num_frames - 1) % t:
            below = (num_frames - 1) // t * t + 1
            raise ValueError(
                f"num_frames (pixel frames per clip) must be of the form {t}k+1 for "
                f"{type(self.pipe).__name__} (its VAE compresses time by {t}); got {num_frames}, "
                f"nearest valid: {below} or {below + t}"
            )
        return (num_frames - 1) // t + 1

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the latents; ValueError unless height and width are multiples of size_multiple."""
        multiple, asked = self.size_multiple, self.pipeline_multiple
        why = (f"its check_inputs asks for {asked}; " if asked > 1 else "") + (
            f"VAE factor {self.spatial} x patch {self.patch_size}")
        for name, value in (("height", height), ("width", width)):
            check_int(name, value, 1)
            if value % multiple:
                raise ValueError(
                    f"{name} must be a multiple of {multiple} for {type(self.pipe).__name__} ({why}); got "
                    f"{value}, nearest valid: {nearest_form(value, multiple)}"
                )
        return height // self.spatial, width // self.spatial

    # -- what each family implements -------------------------------------------------------------------

    def plan(self, num_clips: int, generator: torch.Generator | None, kwargs: dict[str, Any],
             check_frames: Callable[[int], None] = no_check) -> ClipPlan:  # fmt: skip
        """The plan of one call; `check_frames(F)` is called with the latent frames per clip as soon as
        they are known, before any model call (LongVideoPipeline checks the sampler's clip there)."""
        raise NotImplementedError

    def decode_latents(self, latents: torch.Tensor, **options: Any) -> torch.Tensor:
        """Latents (B, C, F, h, w) as the loop leaves them -> frames (B, 3, 1 + (F-1) t, H, W) in about
        [-1, 1]: the pipeline's un-normalisation and VAE decode; `options` a plan's `decode_options`."""
        raise NotImplementedError

    @property
    def causal_decoder(self) -> bool:
        """Whether a decoded frame depends on earlier latent frames only (else it also looks ahead)."""
        return True

    def stream_decoder(self, context: int, options: dict[str, Any] | None = None,
                       total: int | None = None) -> Any:  # fmt: skip
        """Decodes a long video's latents stretch by stretch (each clip's), returning the pixel frames each
        stretch adds (`flush()` at the end): `decode_latents` with `context` latent frames before each
        stretch and, for a non-causal decoder, `context` after it (models.stream_decode). A family whose
        VAE decodes in a streamable way of its own (a causal cache, fixed temporal tiles) overrides this to
        decode exactly as a whole-video decode of `total` latent frames does."""
        lookahead = 0 if self.causal_decoder else context
        decode = functools.partial(self.decode_latents, **(options or {}))
        return StreamingDecoder(decode, self.temporal, context, lookahead)

    def to_pipeline_layout(self, latents: torch.Tensor) -> torch.Tensor:
        """Kit layout (B, C, F, h, w) -> the pipeline's latent layout (its `latents=` argument)."""
        return latents

    def from_pipeline_layout(self, latents: torch.Tensor, clip_shape: Sequence[int]) -> torch.Tensor:
        """The pipeline's latent layout -> the kit's (B, C, F, h, w) of `clip_shape`."""
        return latents

    # -- shared helpers --------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return torch.device(self.pipe._execution_device)


def take(kwargs: dict[str, Any], allowed: dict[str, Any], family: str) -> dict[str, Any]:
    """`allowed`'s defaults updated with `kwargs`; TypeError naming any keyword the family does not take."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"{family} does not take {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}, plus "
            "sampler, num_clips, generator, output_type, sink, decode_context and on_clip"
        )
    return {**allowed, **kwargs}


def per_clip(name: str, value: Any, num_clips: int, single: type | tuple[type, ...]) -> list[Any]:
    """A single value for every clip -> [value]; a list of num_clips values -> the list (one per clip)."""
    if value is None or isinstance(value, single):
        return [value]
    if isinstance(value, (list, tuple)) and len(value) == num_clips and all(
        v is None or isinstance(v, single) for v in value
    ):
        return list(value)
    kinds = single.__name__ if isinstance(single, type) else "/".join(t.__name__ for t in single)
    raise ValueError(
        f"{name} must be one {kinds} for every clip or a list of num_clips={num_clips} of them (one per "
        f"clip); got {type(value).__name__}"
        + (f" of {len(value)} items" if isinstance(value, (list, tuple)) else "")
    )


def clip_index(items: list[Any], i: int) -> Any:
    """The item of clip i: the only one, or the i-th."""
    return items[0] if len(items) == 1 else items[i]


def check_guidance(name: str, value: float) -> float:
    return float(check_real(name, value, 0.0, 1e6))


def check_steps(num_inference_steps: int) -> int:
    return check_int("num_inference_steps", num_inference_steps, 1)


def nearest_form(value: int, multiple: int) -> str:
    below = value // multiple * multiple
    return f"{below} or {below + multiple}" if below else f"{multiple}"

