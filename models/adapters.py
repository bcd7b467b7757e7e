"""Backbone adapters: every supported video model as a `samplers.VideoDenoiser`.

    from models.adapters import denoiser_for
    denoiser = denoiser_for(unet)  # VidRDUNet, UNet3DConditionModel or UNetMotionModel
    out = denoiser(latents, t, encoder_hidden_states=text)  # latents (B, C, F, H, W), text (B, S, D)

`ModuleDenoiser` does the common work once (k-diffusion style): it casts the latents and every
floating-point conditioning tensor to the model's dtype and device, broadcasts the timestep (a 0-d or
1-element tensor, or a Python number) to a `(B,)` tensor on the model's device, runs the model without
autograd unless the latents require grad (a guidance that differentiates the x0 estimate, e.g.
`samplers.ReconstructionGuidance`, gets a graph; plain sampling builds none), unwraps diffusers outputs
(`.sample` or `tuple[0]`) and casts the result back to the latents' dtype and device. Each backbone
family overrides one hook, `call_model`, which only deals with the model's own input layout.
Classifier-free guidance is `samplers.ClassifierFreeGuidance(adapter, scale)`: it stacks uncond + cond
into one batch of 2B, so every adapter sees a single batched call.

The conditioning keyword of every UNet is `encoder_hidden_states`, `(B, S, D)` — one text embedding per
video, whatever the model wants internally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers import UNet3DConditionModel, UNetMotionModel
from einops import repeat
from torch import Tensor, nn

from .vidrd_unet import VidRDUNet

__all__ = [
    "CallableDenoiser",
    "ModuleDenoiser",
    "MotionDenoiser",
    "UNet3DDenoiser",
    "VidRDDenoiser",
    "denoiser_for",
]


class ModuleDenoiser:
    """Base adapter of an `nn.Module` backbone; subclasses override `call_model` only.

    `call_model(latents, timesteps, context, **kw)` receives latents `(B, C, F, H, W)` already in the model's
    dtype and device, timesteps `(B,)` on the model's device (`(B, F)`, one per frame, from an adapter whose
    `model_timesteps` reads them: VidRDDenoiser), `context` the `encoder_hidden_states` (B, S, D)
    and any other conditioning `kw`, cast likewise; it may
    return a tensor, a diffusers output with `.sample`, or a tuple whose first item is the output.
    """

    model_type: type[nn.Module] = nn.Module  # what `__init__` accepts; narrowed by each family

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, self.model_type):
            raise TypeError(
                f"{type(self).__name__} wraps a {self.model_type.__name__}; got {type(model).__name__}"
            )
        self.model = model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"

    @property
    def dtype(self) -> torch.dtype:
        return _first_parameter(self.model).dtype

    @property
    def device(self) -> torch.device:
        return _first_parameter(self.model).device

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor | float, **cond: Any) -> torch.Tensor:
        if latents.ndim != 5:
            raise ValueError(f"latents must be (B, C, F, H, W); got shape {tuple(latents.shape)}")
        dtype, device = self.dtype, self.device
        timesteps = self.model_timesteps(timestep, latents, device)
        cond = {k: _to_model(v, dtype, device) for k, v in cond.items()}
        with torch.set_grad_enabled(torch.is_grad_enabled() and latents.requires_grad):
            if "encoder_hidden_states" not in cond:
                raise ValueError("encoder_hidden_states (B, S, D) is required by every UNet adapter")
            context = cond.pop("encoder_hidden_states")
            out = self.call_model(latents.to(device=device, dtype=dtype), timesteps, context, **cond)
        out = unwrap_output(out)
        if out.shape != latents.shape:
            raise ValueError(
                f"{type(self.model).__name__} returned shape {tuple(out.shape)} for latents of shape "
                f"{tuple(latents.shape)}; a VideoDenoiser must return the latents' shape"
            )
        return out.to(device=latents.device, dtype=latents.dtype)

    def model_timesteps(self, timestep: Tensor | float, latents: Tensor, device: torch.device) -> Tensor:
        """The timestep as `call_model` gets it: (B,) on the model's device."""
        return broadcast_timestep(timestep, latents.shape[0], device)

    def call_model(self, latents: Tensor, timesteps: Tensor, context: Tensor, **kw: Any) -> Any:
        """Run the model on (B, C, F, H, W) latents; the hook each backbone family overrides."""
        raise NotImplementedError


class VidRDDenoiser(ModuleDenoiser):
    """`VidRDUNet`: sample (B, C, F, H, W), encoder_hidden_states (B, S, D), natively. It takes one timestep
    per frame (`frame_timesteps`) as (B, F) or (1, F), and as (F,) where F differs from B: a 1-D timestep of
    B elements is one per video, as every adapter reads it."""

    model_type = VidRDUNet
    frame_timesteps = True

    def model_timesteps(self, timestep: Tensor | float, latents: Tensor, device: torch.device) -> Tensor:
        """One number or (B,) -> (B,); (B, F), (1, F) or (F,) -> (B, F), one timestep per frame."""
        t = torch.as_tensor(timestep, device=device)
        batch, frames = latents.shape[0], latents.shape[2]
        if t.numel() == 1 or t.shape == (batch,):
            return broadcast_timestep(t, batch, device)
        if t.shape not in ((frames,), (1, frames), (batch, frames)):
            raise ValueError(f"timestep must be one number, (B,) = ({batch},) one per video, or (B, F) = "
                             f"({batch}, {frames}) one per frame, for latents {tuple(latents.shape)}; got "
                             f"shape {tuple(t.shape)}")  # fmt: skip
        return t.reshape(-1, frames).expand(batch, frames)

    def call_model(self, latents: Tensor, timesteps: Tensor, context: Tensor, **kw: Any) -> Any:
        return self.model(latents, timesteps, context, **kw)


class UNet3DDenoiser(ModuleDenoiser):
    """diffusers `UNet3DConditionModel` (ModelScope / Zeroscope layout): (B, C, F, H, W) and (B, S, D)
    natively; the model repeats the text embedding over the frames itself."""

    model_type = UNet3DConditionModel

    def call_model(self, latents: Tensor, timesteps: Tensor, context: Tensor, **kw: Any) -> Any:
        return self.model(latents, timesteps, encoder_hidden_states=context, return_dict=False, **kw)


class MotionDenoiser(ModuleDenoiser):
    """diffusers `UNetMotionModel` (AnimateDiff layout).

    In diffusers 0.42 the sample is (B, C, F, H, W) (the forward docstring's "(batch, num_frames,
    channel, ...)" is wrong: it reads `num_frames = sample.shape[2]`), but, unlike `UNet3DConditionModel`,
    it does not repeat the text embedding over the frames: `encoder_hidden_states` must be
    `(B * F, S, D)` with frames innermost, as `AnimateDiffPipeline` does with `repeat_interleave`. This
    adapter takes the usual (B, S, D) and does that repeat.
    """

    model_type = UNetMotionModel

    def call_model(self, latents: Tensor, timesteps: Tensor, context: Tensor, **kw: Any) -> Any:
        batch, num_frames = latents.shape[0], latents.shape[2]
        if context.shape[0] != batch:
            raise ValueError(
                f"encoder_hidden_states must be (B, S, D) with B = {batch}; got shape {tuple(context.shape)}"
            )
        per_frame = repeat(context, "b s d -> (b f) s d", f=num_frames)
        return self.model(latents, timesteps, encoder_hidden_states=per_frame, return_dict=False, **kw)


class CallableDenoiser:
    """Any plain callable `fn(latents, timestep, **cond) -> Tensor` as a `VideoDenoiser`, unchanged.

    Nothing is cast, broadcast or unwrapped: `fn` is trusted to honour the protocol itself.
    """

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        if not callable(fn):
            raise TypeError(f"CallableDenoiser wraps a callable; got {type(fn).__name__}")
        self.fn = fn

    def __repr__(self) -> str:
        return f"CallableDenoiser({self.fn!r})"

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor | float, **cond: Any) -> torch.Tensor:
        return self.fn(latents, timestep, **cond)


_ADAPTERS: tuple[type[ModuleDenoiser], ...] = (VidRDDenoiser, UNet3DDenoiser, MotionDenoiser)


def denoiser_for(model: Any) -> ModuleDenoiser | CallableDenoiser:
    """The adapter of `model`, chosen by type; an adapter is returned unchanged.

    Plain callables are not guessed at (an image UNet is callable too, but not a video denoiser): wrap
    them explicitly with `CallableDenoiser(fn)`.
    """
    if isinstance(model, (ModuleDenoiser, CallableDenoiser)):
        return model
    for adapter in _ADAPTERS:
        if isinstance(model, adapter.model_type):
            return adapter(model)
    supported = ", ".join(a.model_type.__name__ for a in _ADAPTERS)
    raise TypeError(
        f"no adapter for {type(model).__name__}; supported: {supported} (wrap any other "
        "fn(latents, timestep, **cond) with CallableDenoiser). Diffusers' video transformers (Wan, "
        "CogVideoX, LTX-Video, HunyuanVideo, Mochi) are driven with their pipelines: "
        "LongVideoPipeline.from_pipe(pipe)"
    )


def broadcast_timestep(timestep: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    """A 0-d or 1-element tensor or a Python number -> `(batch,)` on `device`; `(batch,)` passes through.

    The dtype is kept (integer timesteps stay integer); Python floats become the default float dtype.
    """
    t = torch.as_tensor(timestep, device=device).reshape(-1)
    if t.numel() == 1:
        return t.expand(batch)
    if t.numel() == batch:
        return t
    raise ValueError(f"timestep must be a scalar or have {batch} elements (the batch); got {t.numel()}")


def unwrap_output(out: Any) -> torch.Tensor:
    """A diffusers output (`.sample`), a tuple (its first item) or a tensor -> the tensor."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "sample"):
        return out.sample
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"cannot find the output tensor in a {type(out).__name__}")


def _to_model(value: Any, dtype: torch.dtype, device: torch.device) -> Any:
    """Floating tensors -> the model's dtype and device; other tensors -> its device; the rest unchanged."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.is_floating_point():
        return value.to(device=device, dtype=dtype)
    return value.to(device=device)


def _first_parameter(model: nn.Module) -> torch.Tensor:
    for tensor in model.parameters():
        return tensor
    for tensor in model.buffers():
        return tensor
    raise ValueError(f"{type(model).__name__} has no parameters or buffers to take a dtype and device from")
