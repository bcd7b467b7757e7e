"""LongVideoSampler: a long video clip by clip, with composable noise initializers and guidances.

Per clip i (docs/DESIGN.md §2):
  1. zT[i] <- initializers applied in list order to fresh N(0, I) noise (FNR, PNS, ...);
  2. z_0 <- zT[i] * init_noise_sigma, then for each step s = 0..T-1:
       z_s <- guidances applied in list order (DSG, ...);  record what the guidances declared;
       z_{s+1} <- scheduler.step(denoiser(model_input(z_s), t_s), t_s, z_s);
  3. stream the finished clip out (`on_clip`), keep zT[i] and the recording for clip i+1.

Nothing non-finite passes silently: NaN or inf in the initial noise, a guidance's output, the denoiser's
output or the scheduler's next latents is a ValueError at the end of the clip, naming the step and which
of them made it first. An ordinary clip costs one pass over its final latents and one host read; a clip
whose final latents are not finite is run again from the same generator state with every step's
outputs logged on the device (_FiniteLog), to name the first step and source.

The scheduler is seen through `samplers.schedulers.Schedule` (VP, VE-state and flow-matching schedulers
alike): each step's context carries the latents' noise level (z_s = a x0 + s eps). Guidances may
differentiate through the denoiser: where the schedule converts its model output to x0 exactly
(Schedule.x0_problem), each step's context carries `predict_x0`, a closure that calls the denoiser once
on latents shaped like z_s (with the clip's conditioning) and returns x0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import torch
from tqdm.auto import tqdm

from .protocols import (
    LatentGuidance,
    NoiseContext,
    NoiseInitializer,
    Recording,
    RecordSpec,
    StepContext,
    hook,
)
from .schedulers import Schedule, as_schedule, warn_if_guidance_inexact
from .state import Resume, SamplerState
from .validation import check_device, check_dtype, check_generator, check_int


@dataclass(frozen=True)
class Clip:
    """One finished clip, as streamed to `on_clip`."""

    index: int  # i
    start: int  # frame index of its first kept frame in the long video
    latents: torch.Tensor  # (B, C, n, H, W): the kept frames (n = N, or N - M when prompt frames are dropped)
    initial_noise: torch.Tensor  # zT[i], unit variance, (B, C, N, H, W)


@dataclass(frozen=True)
class LongVideo:
    """The sampler's result."""

    latents: torch.Tensor | None  # (B, C, L, H, W); None when sampled with return_latents=False
    clip_starts: list[int]  # frame index where each clip begins in `latents`


def _split_strategies(strategies: Sequence[Any]) -> tuple[list[Any], list[Any], list[str], list[str]]:
    """Guidances are recognised by `record_spec`; any other callable is a noise initializer. Returns the
    initializers, the guidances and their labels for error messages, 'strategies[k] (repr)', in order."""
    initializers, guidances, initializer_labels, guidance_labels = [], [], [], []
    for k, strategy in enumerate(strategies):
        if isinstance(strategy, type):  # a runtime Protocol check would accept the class itself
            name = strategy.__name__
            raise TypeError(f"strategies[{k}] is the class {name}; pass an instance, e.g. {name}()")
        if isinstance(strategy, LatentGuidance):
            guidances.append(strategy)
            guidance_labels.append(f"strategies[{k}] ({strategy!r})")
        elif isinstance(strategy, NoiseInitializer):
            initializers.append(strategy)
            initializer_labels.append(f"strategies[{k}] ({strategy!r})")
        else:
            whole = ""
            if callable(getattr(strategy, "sample", None)):  # FIFO, FreeNoise, WindowedSampler
                whole = f" ({type(strategy).__name__} makes the whole long video itself: call its .sample)"
            raise TypeError(
                f"strategies[{k}] must be a NoiseInitializer or a LatentGuidance; got {strategy!r}{whole}"
            )
    return initializers, guidances, initializer_labels, guidance_labels


def _merge_specs(specs: list[RecordSpec]) -> RecordSpec:
    """The union of what every guidance asked to keep."""
    frames = tuple(sorted({f for spec in specs for f in spec.frames}))
    steps = max((spec.steps for spec in specs), default=0)
    return RecordSpec(frames=frames, steps=steps, final=any(spec.final for spec in specs))


def _duplicates_prompt_frames(strategies: Sequence[Any]) -> bool:
    """True when a strategy declares that its clips' first M frames repeat the previous clip."""
    return any(hook(strategy, "duplicates_prompt_frames") for strategy in strategies)


class LongVideoSampler:
    """`LongVideoSampler([FNR(), PNS(alpha=4), DSG(beta=0.4)])` is the paper's VidRD sampler.

    `drop_prompt_frames`: True drops the first M frames of clips i >= 1 from the output, False keeps all
    N frames of every clip (the paper, whose prompt frames mirror the previous clip). None (the default)
    drops them when some strategy declares `duplicates_prompt_frames` (e.g. `ForwardOverlap`, whose
    prompt frames repeat the previous clip's last M frames in forward order) and keeps them otherwise.
    """

    def __init__(
        self,
        strategies: Sequence[Any] = (),
        prompt_frames: int = 4,
        drop_prompt_frames: bool | None = None,
        progress: bool = True,
    ) -> None:
        self.prompt_frames = check_int("prompt_frames", prompt_frames, 1)
        self.initializers, self.guidances, *labels = _split_strategies(strategies)
        self._initializer_labels, self._guidance_labels = labels
        if drop_prompt_frames is not None and not isinstance(drop_prompt_frames, bool):
            raise TypeError(f"drop_prompt_frames must be True, False or None; got {drop_prompt_frames!r}")
        if drop_prompt_frames is None:
            drop_prompt_frames = _duplicates_prompt_frames([*self.initializers, *self.guidances])
        self.drop_prompt_frames = drop_prompt_frames  # resolved: True drops clips' prompt frames (i >= 1)
        self.progress = progress

    def __repr__(self) -> str:
        names = ", ".join(repr(s) for s in (*self.initializers, *self.guidances))
        return f"LongVideoSampler([{names}], prompt_frames={self.prompt_frames})"

    def sample(
        self,
        denoiser: Callable[..., torch.Tensor],
        scheduler: Any,
        clip_shape: Sequence[int],
        num_clips: int,
        num_inference_steps: int = 50,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        on_clip: Callable[[Clip], None] | None = None,
        return_latents: bool = True,
        clip_cond: Callable[[int], dict[str, Any]] | None = None,
        resume: Resume | None = None,
        on_state: Callable[[SamplerState], None] | None = None,
        **cond: Any,
    ) -> LongVideo:
        """Sample `num_clips` clips of shape `clip_shape` = (B, C, N, H, W).

        `cond` goes to every denoiser call; `clip_cond(i)` adds (or overrides) keyword arguments for the
        calls of clip i, e.g. one prompt per clip. `on_state(state)` receives, after every clip but the
        last (and after its `on_clip`), what the next clip needs (samplers.state); `resume` continues
        from such a state: its finished clips are streamed out again, then sampling goes on with the bits
        an uninterrupted run would have (the generator's state is restored into `generator`).
        """
        schedule, clip_shape = self._validate(
            denoiser, scheduler, clip_shape, num_clips, num_inference_steps, generator
        )
        device = _validate_options(generator, dtype, device, on_clip, clip_cond)
        _check_resume(resume, on_state, clip_shape, num_clips)
        num_steps = len(schedule.set_timesteps(num_inference_steps))  # T; each clip sets them again
        specs = [g.record_spec(clip_shape[2], self.prompt_frames, num_steps) for g in self.guidances]
        # A guidance that records nothing has nothing of the previous clip to impose (e.g. DSG(beta=0)).
        active = [
            type(g).__name__
            for g, spec in zip(self.guidances, specs, strict=True)
            if spec.steps > 0 or spec.final
        ]
        warn_if_guidance_inexact(schedule, active)
        spec = _merge_specs(specs)
        run = _ClipRun(self, denoiser, schedule, num_inference_steps, generator, spec)
        kept: list[torch.Tensor] = []
        with tqdm(total=num_clips * num_steps, disable=not self.progress, desc="clips") as bar:
            first, noise, recording, starts = self._resume(resume, generator, dtype, device, on_clip, kept,
                                                           return_latents)  # fmt: skip
            bar.update(first * num_steps)
            start = starts.pop()
            for i in range(first, num_clips):
                noise = self._initial_noise(i, noise, clip_shape, generator, dtype, device)
                clip_kwargs = cond if clip_cond is None else {**cond, **_clip_cond(clip_cond, i)}
                latents, recording = run.denoise(i, noise, recording, clip_kwargs, bar)
                if self.drop_prompt_frames and i > 0:
                    latents = latents[:, :, self.prompt_frames :]
                if on_clip is not None:
                    on_clip(Clip(index=i, start=start, latents=latents, initial_noise=noise))
                if return_latents:
                    kept.append(latents)
                starts.append(start)
                start += latents.shape[2]
                if on_state is not None and i + 1 < num_clips:
                    on_state(SamplerState(i + 1, generator.get_state(), noise, recording, (*starts, start)))
        return LongVideo(latents=torch.cat(kept, dim=2) if return_latents else None, clip_starts=starts)

    @staticmethod
    def _resume(resume, generator, dtype, device, on_clip, kept, return_latents):
        """(first clip to sample, previous noise, recording, clip starts + the next start): nothing done yet,
        or `resume`'s state after its finished clips are streamed out again (and kept)."""
        if resume is None:
            return 0, None, None, [0]
        state = resume.state
        count = 0
        for clip in resume.clips:
            if count == state.next_clip or clip.index != count or clip.start != state.clip_starts[count]:
                raise ValueError(_RESUME_CLIPS.format(n=state.next_clip, got=f"clip {clip.index} at {count}"))
            if on_clip is not None:
                on_clip(clip)
            if return_latents:
                kept.append(clip.latents.to(device))
            count += 1
        if count != state.next_clip:
            raise ValueError(_RESUME_CLIPS.format(n=state.next_clip, got=f"{count} clips"))
        generator.set_state(state.generator_state)
        recording = state.recording
        if recording is not None:
            recording = Recording(recording.frames, recording.latents.to(device, dtype),
                                  None if recording.final is None else recording.final.to(device, dtype))
        noise = state.previous_noise.to(device, dtype)
        return state.next_clip, noise, recording, list(state.clip_starts)

    def check_clip(self, num_frames: int) -> None:
        """ValueError unless clips of N = `num_frames` suit M and every strategy (its optional
        `check_clip(num_frames, prompt_frames)` hook); callers may run it before loading a model."""
        if not self.prompt_frames < num_frames:
            raise ValueError(
                f"prompt_frames must be in [1, N-1] = [1, {num_frames - 1}] for clips of N={num_frames} "
                f"frames; got {self.prompt_frames}"
            )
        for strategy in (*self.initializers, *self.guidances):
            hook(strategy, "check_clip")(num_frames, self.prompt_frames)

    def _validate(self, denoiser, scheduler, clip_shape, num_clips, num_inference_steps, generator):
        """Every check of the tools and the work's size, before any work; returns clip_shape as a tuple."""
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable (a VideoDenoiser); got {type(denoiser).__name__}")
        schedule = as_schedule(scheduler)
        for strategy in (*self.initializers, *self.guidances):  # e.g. a guidance that needs exact x0
            hook(strategy, "check_scheduler")(schedule)
        check_generator(generator)
        shape = self._checked_shape(clip_shape, num_clips)
        check_int("num_inference_steps", num_inference_steps, 1)
        return schedule, shape

    def _checked_shape(self, clip_shape, num_clips) -> tuple[int, ...]:
        """clip_shape as a tuple of 5 positive ints that suits every strategy, and num_clips >= 1."""
        shape = tuple(clip_shape) if isinstance(clip_shape, (tuple, list, torch.Size)) else ()
        if len(shape) != 5 or not all(
            isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(f"clip_shape must be 5 positive ints (B, C, N, H, W); got {clip_shape!r}")
        self.check_clip(shape[2])
        check_int("num_clips", num_clips, 1)
        return tuple(int(d) for d in shape)

    def initial_noise(self, clip_shape: Sequence[int], num_clips: int, generator: torch.Generator,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:  # fmt: skip
        """The K clips' initial noises zT[0..K-1] end to end, (B, C, K N, H, W): the noise initializers'
        long-video noise, for a sampler of the whole video at once (e.g. PNS-style noise for windowed
        co-denoising). Guidances play no part in it. They are the noises `sample` draws where its scheduler
        draws nothing between clips (DDIM, flow Euler; not DDPM or Euler ancestral, whose steps draw)."""
        shape = self._checked_shape(clip_shape, num_clips)
        check_generator(generator)
        check_dtype("dtype", dtype)
        noises, previous = [], None
        for i in range(num_clips):
            previous = self._initial_noise(i, previous, shape, generator, dtype, generator.device)
            noises.append(previous)
        return torch.cat(noises, dim=2)

    def _initial_noise(self, i, previous, shape, generator, dtype, device) -> torch.Tensor:
        """zT[i]: fresh N(0, I) noise transformed by the initializers in list order. No fresh candidate is
        drawn for clips i >= 1 whose first initializer discards it (StrategyHooks.discards_candidate)."""
        if i > 0 and self.initializers and hook(self.initializers[0], "discards_candidate"):
            noise = torch.empty(shape, dtype=dtype, device=device)  # never read: FNR, FreeNoiseRescheduling
        else:
            noise = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device).to(device)
        context = NoiseContext(
            clip_index=i, prompt_frames=self.prompt_frames, previous_noise=previous, generator=generator
        )
        for initializer, label in zip(self.initializers, self._initializer_labels, strict=True):
            who = f"noise initializer {label}"
            noise = _checked(initializer(noise, context), noise, who, "", f"clip {i}")
        return noise


_RESUME_CLIPS = (
    "resume.clips must hold the {n} finished clips 0..{n}-1 in order, at the state's starts; got {got}"
)


def _check_resume(resume, on_state, clip_shape, num_clips) -> None:
    """Checks of `resume` and `on_state` before any work."""
    if on_state is not None and not callable(on_state):
        raise TypeError(f"on_state must be None or a callable SamplerState -> None; got {on_state!r}")
    if resume is None:
        return
    if not isinstance(resume, Resume):
        raise TypeError(f"resume must be a samplers.state.Resume (state and finished clips); got {resume!r}")
    state = resume.state
    if not 1 <= state.next_clip < num_clips:
        raise ValueError(f"resume.state.next_clip must be in [1, num_clips-1] = [1, {num_clips - 1}]; "
                         f"got {state.next_clip}")  # fmt: skip
    if tuple(state.previous_noise.shape) != tuple(clip_shape):
        raise ValueError(f"resume.state.previous_noise must have the clip shape {tuple(clip_shape)}; "
                         f"got {tuple(state.previous_noise.shape)}")  # fmt: skip


def _validate_options(generator, dtype, device, on_clip, clip_cond) -> torch.device:
    """The checks of sample()'s options, before any work; returns the device to sample on."""
    check_dtype("dtype", dtype)
    for name, value, kind in (
        ("on_clip", on_clip, "Clip -> None"),
        ("clip_cond", clip_cond, "clip index -> dict of denoiser kwargs"),
    ):
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be None or a callable {kind}; got {value!r}")
    return generator.device if device is None else check_device("device", device)


def _clip_cond(clip_cond: Callable[[int], dict[str, Any]], i: int) -> dict[str, Any]:
    """clip_cond(i), checked: a dict of keyword arguments for the denoiser calls of clip i."""
    extra = clip_cond(i)
    if not isinstance(extra, dict) or not all(isinstance(key, str) for key in extra):
        raise TypeError(
            f"clip_cond({i}) must return a dict of denoiser keyword arguments with str keys, for the "
            f"calls of clip {i}; got {extra!r}"
        )
    return extra


def _matches(value: Any, like: torch.Tensor) -> bool:
    """Whether `value` is a tensor of `like`'s shape, dtype and device (cheap: no string is built)."""
    return (
        isinstance(value, torch.Tensor)
        and value.shape == like.shape
        and value.dtype == like.dtype
        and value.device == like.device
    )


def _checked(value: Any, like: torch.Tensor, who: str, what: str, where: str) -> torch.Tensor:
    """`value` if it `_matches` `like`; else TypeError/ValueError naming `who`, what was expected and got."""
    if _matches(value, like):
        return value
    expected = f"a tensor of {what}shape {tuple(like.shape)} and dtype {like.dtype} on device {like.device}"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{who} must return {expected}; got {type(value).__name__} ({where})")
    got = f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype} on device {value.device}"
    raise ValueError(f"{who} must return {expected}; got {got} ({where})")


def _all_finite(latents: torch.Tensor) -> bool:
    """Whether every value is finite: one reduction without a mask as large as the latents (NaN and inf
    make the sum non-finite); only a sum that overflows from finite values needs the elementwise test."""
    if bool(torch.isfinite(latents.sum(dtype=torch.promote_types(latents.dtype, torch.float32)))):
        return True
    return bool(torch.isfinite(latents).all())


_X0_SOURCE = "the denoiser (called by the guidance {label} through predict_x0)"


class _ClipRun:
    """The denoising loop of one clip, with what is fixed across clips precomputed once."""

    def __init__(self, sampler, denoiser, schedule: Schedule, num_inference_steps, generator, spec) -> None:
        self.sampler, self.denoiser, self.schedule = sampler, denoiser, schedule
        self.num_inference_steps = num_inference_steps
        self.generator = generator
        self.spec = spec  # what the guidances record of every clip
        # Whether steps carry predict_x0: for guidances that declare `needs_x0`, where the scheduler
        # converts its output exactly (else those guidances refused the scheduler up front).
        wanted = any(hook(g, "needs_x0") for g in sampler.guidances)
        self.exact_x0 = wanted and schedule.x0_problem() is None
        # What a step makes, in order: the finiteness log's sources (_FiniteLog).
        guidances = [(_X0_SOURCE.format(label=label), f"the guidance {label}")
                     for label in sampler._guidance_labels]  # fmt: skip
        # Each guidance k has two: the x0 estimates it asked for (2k), then its own output (2k + 1).
        self.sources = [*(src for g in guidances for src in g), "the denoiser", "the scheduler"]
        self._calling = 0  # the guidance running now: its predict_x0 calls are logged under it

    def denoise(self, i, noise, previous, cond, bar) -> tuple[torch.Tensor, Recording | None]:
        """Denoise clip i from its initial noise; return its latents and what the guidances recorded.

        Finiteness costs one pass per clip: the final latents are checked (NaN and inf propagate through
        the steps that follow them). Only if they are not finite is the clip run again from the same
        generator state with every step's outputs logged (_FiniteLog), to name the step and the source.
        """
        start = self.generator.get_state()
        latents, recording = self._denoise(i, noise, previous, cond, bar, None)
        if _all_finite(latents):  # the clip's one host sync
            return latents, recording
        self.generator.set_state(start)
        log = _FiniteLog(self.sources, len(self.schedule.timesteps), noise)
        with tqdm(disable=True) as quiet:
            self._denoise(i, noise, previous, cond, quiet, log)
        log.check(i)  # raises, naming the step and the source
        raise ValueError(
            f"the latents of clip {i} are not finite (NaN or inf), but a re-run from the same state with "
            "every step checked did not reproduce it: is the denoiser nondeterministic?"
        )

    def _denoise(self, i, noise, previous, cond, bar, log) -> tuple[torch.Tensor, Recording | None]:
        """The denoising loop of clip i; with a `_FiniteLog`, every output of every step goes into it."""
        schedule, sampler = self.schedule, self.sampler
        timesteps = schedule.set_timesteps(self.num_inference_steps, noise.device)  # resets solver state
        levels = schedule.levels()  # read from a host copy of the schedule, once per clip
        num_frames, num_steps, spec = noise.shape[2], len(timesteps), self.spec
        record = noise.new_empty((spec.steps, *noise.shape[:2], len(spec.frames), *noise.shape[3:]))
        frames = torch.tensor(spec.frames, dtype=torch.long, device=noise.device)
        log = log if log is not None else _NO_LOG
        log.add_initial_noise(noise)
        latents = noise * schedule.init_noise_sigma
        for s, t in enumerate(timesteps):
            level = levels[s]
            predict_x0 = self._x0_closure(t, level, cond, i, s, log) if self.exact_x0 else None
            context = StepContext(i, s, num_steps, t, sampler.prompt_frames, num_frames, previous,
                                  predict_x0=predict_x0, alpha_bar=level.alpha_bar if predict_x0 else None,
                                  noise_level=level)  # fmt: skip
            latents = self._guide(latents, context, log)
            if s < spec.steps:
                record[s] = latents.index_select(2, frames)  # M frames (latents may change dtype)
            output = self._call_denoiser(schedule.model_input(latents, t), t, cond, i, s)
            log.add(s, len(self.sources) - 2, output)
            latents = schedule.step(output, t, latents, self.generator)
            log.add(s, len(self.sources) - 1, latents)
            bar.update(1)
        if not (spec.steps or spec.final):
            return latents, None
        final = latents.index_select(2, frames) if spec.final else None
        return latents, Recording(frames=spec.frames, latents=record, final=final)

    def _guide(self, latents: torch.Tensor, context: StepContext, log: _FiniteLog) -> torch.Tensor:
        """The guidances in list order, each output checked (shape now, finiteness in the log). Messages
        are built only on failure: this runs at every step."""
        for k, guidance in enumerate(self.sampler.guidances):
            self._calling = k
            guided = guidance(latents, context)
            if guided is not latents and not _matches(guided, latents):  # as is or edited in place: fits
                who = f"guidance {self.sampler._guidance_labels[k]}"
                where = f"clip {context.clip_index}, step {context.step_index}"
                _checked(guided, latents, who, "the latents' ", where)
            latents = guided
            log.add(context.step_index, 2 * k + 1, latents)  # a no-op but on a clip's diagnostic re-run
        return latents

    def _x0_closure(self, t, level, cond, i, s, log) -> Callable[[torch.Tensor], torch.Tensor]:
        """z -> the denoiser's x0 estimate at step s: one more denoiser call per use, differentiable where
        the denoiser is. Its outputs' finiteness goes to the clip's log like every other denoiser call's."""

        def predict_x0(latents: torch.Tensor) -> torch.Tensor:
            output = self._call_denoiser(self.schedule.model_input(latents, t), t, cond, i, s)
            if latents.requires_grad and not output.requires_grad:  # else x0's gradient would be partial
                raise ValueError(
                    "a guidance differentiates the x0 estimate, but the denoiser's output carries no "
                    f"gradient (does it run under torch.no_grad or detach?) at clip {i}, step {s}"
                )
            log.add(s, 2 * self._calling, output)
            return self.schedule.x0(output, latents, level)

        return predict_x0

    def _call_denoiser(self, model_input, t, cond, i, s) -> torch.Tensor:
        """The denoiser's output, its type and shape checked (its finiteness is the caller's to log)."""
        output = self.denoiser(model_input, t, **cond)
        if not isinstance(output, torch.Tensor) or output.shape != model_input.shape:
            got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(
                f"denoiser must return a tensor of the latents' shape {tuple(model_input.shape)}; "
                f"got {got} (clip {i}, step {s})"
            )
        return output


class _FiniteLog:
    """Whether everything a clip makes is finite, kept on the device and read once, at the end of the clip:
    the diagnostic run of a clip whose final latents are not finite (`_ClipRun.denoise`).

    Reading a value on the host (`bool`, `.item()`) waits for a GPU to finish its queued work; doing that
    at every denoiser call would stall the pipeline, so each tensor's sum goes into a small device tensor
    instead, one entry per (step, source) in the order they are made, plus one for the initial noise. A NaN
    or inf anywhere makes its sum non-finite; half-precision sums accumulate in float32, so that large
    but finite float16 outputs do not overflow into a false alarm. `check` names the first non-finite
    entry: later ones inherit it (a guidance copies the scheduler's NaN into the next denoiser input).
    """

    def __init__(self, sources: list[str], num_steps: int, like: torch.Tensor) -> None:
        self.sources = sources  # what makes entry k of every step, in the order a step makes them
        dtype = torch.promote_types(like.dtype, torch.float32)
        self.sums = torch.zeros(1 + num_steps * len(sources), dtype=dtype, device=like.device)

    def add_initial_noise(self, noise: torch.Tensor) -> None:
        self.sums[0].add_(noise.detach().sum(dtype=self.sums.dtype))

    def add(self, step: int, source: int, tensor: torch.Tensor) -> None:
        """Log `tensor`, made by `sources[source]` at `step` (several calls add up). No host sync."""
        k = 1 + step * len(self.sources) + source
        self.sums[k].add_(tensor.detach().sum(dtype=self.sums.dtype))

    def check(self, clip: int) -> None:
        """ValueError naming the first non-finite entry of the clip; the clip's one host sync."""
        finite = torch.isfinite(self.sums)
        if finite.all():
            return
        k = int((~finite).nonzero()[0, 0])
        if k == 0:
            raise ValueError(f"the noise initializers returned non-finite initial noise for clip {clip}")
        step, source = divmod(k - 1, len(self.sources))
        raise ValueError(
            f"{self.sources[source]} returned non-finite values (NaN or inf) at clip {clip}, step {step}: "
            "the first in this clip (anything later may only have inherited them)"
        )


class _NoLog:
    """The log of a clip's ordinary run: nothing is logged (the final latents are checked instead)."""

    def add_initial_noise(self, noise: torch.Tensor) -> None:
        pass

    def add(self, step: int, source: int, tensor: torch.Tensor) -> None:
        pass


_NO_LOG = _NoLog()
