"""A resumable training loop: atomic checkpoints, exact resume, a loss curve.

All randomness of a run (batches, noise, timesteps) comes from one `torch.Generator` whose state is part
of the checkpoint, so a run killed after a checkpoint and resumed reaches bit for bit the state of an
uninterrupted run with the same seed.

A checkpoint (`torch.save` of plain containers, read back with `weights_only=True`) also records the
stage, the LoopConfig and the caller's `identity` (e.g. the recipe fields), and a sha256 of all its
contents. A resume refuses, naming the file and what is wrong: an unreadable, truncated or altered file
(`DamagedCheckpointError`), another stage, another seed, learning rate, ... (`CheckpointMismatchError`,
naming the field and both values), tensors or optimiser state that do not fit the model. Only `steps`
(to extend a run) and `checkpoint_every` may change between runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from samplers.validation import check_int, check_real

from ..digest import content_digest
from ..files import atomic_path
from ..loading import DamagedCheckpointError, check_state, load_weights_only

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "reuse-diffuse-kit training checkpoint 2"
RESUMABLE = ("steps", "checkpoint_every")  # LoopConfig fields a resumed run may change


class CheckpointMismatchError(ValueError):
    """A training checkpoint written by another stage or with other settings than the run resuming it."""


@dataclass(frozen=True)
class LoopConfig:
    steps: int  # optimiser steps in total (a resumed run continues up to this)
    lr: float  # Adam learning rate
    checkpoint_every: int = 100  # steps between checkpoints (and one at the end)
    seed: int = 0  # seeds the run's generator
    grad_clip: float = 1.0  # max global gradient norm

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1)
        check_real("lr", self.lr, 0.0)
        check_int("checkpoint_every", self.checkpoint_every, 1)
        check_int("seed", self.seed, 0)
        if check_real("grad_clip", self.grad_clip, 0.0) == 0.0:
            raise ValueError("grad_clip must be > 0 (a max gradient norm of 0 zeroes every update); got 0.0")


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimiser,
    step: int,
    generator,
    losses: list[float],
    stage: str,
    config: LoopConfig,
    identity: Mapping[str, Any] | None = None,
) -> None:
    """Write the whole training state to `path` atomically (temp file + rename), with what it was trained
    as (stage, loop config, `identity`) and a digest of all of it."""
    state = {"format": CHECKPOINT_FORMAT, "stage": stage, "loop": asdict(config),
             "identity": dict(identity or {}), "model": model.state_dict(),
             "optimiser": optimiser.state_dict(), "step": step, "generator": generator.get_state(),
             "losses": list(losses)}  # fmt: skip
    state["digest"] = checkpoint_digest(state)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(
    name: str,
    model: nn.Module,
    loss_fn: Callable[[torch.Generator], torch.Tensor],
    config: LoopConfig,
    out: str | os.PathLike,
    resume: bool = True,
    progress: bool = True,
    identity: Mapping[str, Any] | None = None,
) -> list[float]:
    """Minimise `loss_fn(generator)` over `model`'s trainable parameters; returns the loss history.

    `model` holds everything whose state the checkpoint must keep; only parameters with
    requires_grad are optimised. With `resume`, an existing checkpoint in `out` is continued, if it is
    intact and was written by stage `name` with the same loop config (`steps` and `checkpoint_every`
    aside) and the same `identity` (plain values: what else shaped the training); otherwise a
    `DamagedCheckpointError` or `CheckpointMismatchError` (ValueErrors) names the file and the fault.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{name}: the model has no trainable parameters")
    optimiser = torch.optim.Adam(params, lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    step, losses = 0, []
    checkpoint = out / CHECKPOINT
    identity = dict(identity or {})
    if resume and checkpoint.exists():
        step, losses = resume_from(checkpoint, name, config, identity, model, optimiser, generator)
    with tqdm(total=config.steps, initial=step, desc=name, disable=not progress) as bar:
        while step < config.steps:
            loss = loss_fn(generator)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimiser.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(checkpoint, model, optimiser, step, generator, losses, name, config, identity)
    return losses


def resume_from(
    path: Path, stage: str, config: LoopConfig, identity: Mapping[str, Any], model, optimiser, generator
) -> tuple[int, list[float]]:
    """Load the checkpoint at `path` into model, optimiser and generator, once all checks passed; its
    (step, losses)."""
    state = read_checkpoint(path)
    check_settings(path, state, stage, config, identity)
    check_training_state(path, state, model, optimiser, generator)
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    generator.set_state(state["generator"])
    return state["step"], list(state["losses"])


# --- reading a checkpoint back ----------------------------------------------------------------------------


def _afresh(path: Path) -> str:
    return f"to start afresh, delete {path.parent} or use another --out"


def checkpoint_digest(state: Mapping[str, Any]) -> str:
    """The digest of everything in `state` but its "digest" field."""
    return content_digest({k: v for k, v in state.items() if k != "digest"})


FIELDS = {"format": str, "stage": str, "loop": dict, "identity": dict, "model": Mapping, "optimiser": dict,
          "step": int, "generator": torch.Tensor, "losses": list, "digest": str}  # fmt: skip


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, loaded with weights_only, its fields and digest checked."""
    state = load_weights_only(path, DamagedCheckpointError, "training checkpoint", _afresh(path))
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DamagedCheckpointError(
            f"{path} is not a checkpoint of this training loop (format {found!r}, expected "
            f"{CHECKPOINT_FORMAT!r}: another program or an older version wrote it); {_afresh(path)}"
        )
    if wrong := [k for k, kind in FIELDS.items() if not isinstance(state.get(k), kind)]:
        raise DamagedCheckpointError(f"{path}: field(s) {wrong} missing or malformed; {_afresh(path)}")
    if state["digest"] != checkpoint_digest(state):
        raise DamagedCheckpointError(
            f"{path}: its contents do not match the digest stored with them: the file is damaged; "
            f"{_afresh(path)}"
        )
    return state


def check_settings(
    path: Path, state: Mapping[str, Any], stage: str, config: LoopConfig, identity: Mapping[str, Any]
) -> None:
    """The checkpoint was written by `stage`, with this `identity` and loop config (bar RESUMABLE), and
    is not past `config.steps`; CheckpointMismatchError naming the field and both values otherwise."""
    if state["stage"] != stage:
        raise CheckpointMismatchError(
            f"{path} is a checkpoint of the {state['stage']!r} stage, not of {stage!r}; {_afresh(path)}"
        )
    now = {**identity, **{f"loop.{k}": v for k, v in asdict(config).items() if k not in RESUMABLE}}
    then = {**state["identity"], **{f"loop.{k}": v for k, v in state["loop"].items() if k not in RESUMABLE}}
    for field in [*now, *(k for k in then if k not in now)]:
        if now.get(field, "(absent)") != then.get(field, "(absent)"):
            raise CheckpointMismatchError(
                f"{path} was written with {field} = {then.get(field, '(absent)')!r}, this run has {field} = "
                f"{now.get(field, '(absent)')!r}: resuming would mix two runs; {_afresh(path)}"
            )
    if state["step"] > config.steps:
        raise CheckpointMismatchError(
            f"{path} is at step {state['step']}, past this run's {config.steps} steps; {_afresh(path)}"
        )


def check_training_state(
    path: Path, state: Mapping[str, Any], model: nn.Module, optimiser, generator
) -> None:
    """Model tensors, optimiser state, generator state and losses fit this model (names and shapes)."""
    check_state(path, model.state_dict(), state["model"])
    names = {id(p): n for n, p in model.named_parameters()}
    params = [p for group in optimiser.param_groups for p in group["params"]]
    saved = state["optimiser"]
    sizes = [len(g.get("params", ())) if isinstance(g, dict) else -1 for g in saved.get("param_groups") or ()]
    wanted = [len(g["params"]) for g in optimiser.param_groups]
    if sizes != wanted or not isinstance(saved.get("state"), dict):
        raise DamagedCheckpointError(
            f"{path}: the optimiser state is for parameter groups of sizes {sizes}, this model trains "
            f"{wanted}; {_afresh(path)}"
        )
    for index, entries in saved["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(entries, dict):
            raise DamagedCheckpointError(f"{path}: unexpected optimiser state {index!r}; {_afresh(path)}")
        for key, value in entries.items():
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != params[index].shape:
                raise DamagedCheckpointError(
                    f"{path}: size mismatch for the optimiser's {key} of {names.get(id(params[index]))}: "
                    f"{tuple(value.shape)}, the parameter's {tuple(params[index].shape)}; {_afresh(path)}"
                )
    _check_progress(path, state, generator)


def _check_progress(path: Path, state: Mapping[str, Any], generator) -> None:
    want = generator.get_state()
    saved = state["generator"]
    if saved.dtype != want.dtype or saved.shape != want.shape:
        raise DamagedCheckpointError(
            f"{path}: the generator state is {saved.dtype} {tuple(saved.shape)}, not {want.dtype} "
            f"{tuple(want.shape)}; {_afresh(path)}"
        )
    losses, step = state["losses"], state["step"]
    if step < 0 or len(losses) != step or not all(isinstance(x, float) for x in losses):
        raise DamagedCheckpointError(
            f"{path}: step {step} with {len(losses)} losses (one float per step expected); {_afresh(path)}"
        )


def plot_losses(losses: list[float], path: str | os.PathLike, title: str) -> None:
    """The loss curve (raw and a 50-step running mean) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = max(1, min(50, len(losses)))
    kernel = torch.ones(window) / window
    smooth = torch.nn.functional.conv1d(torch.tensor(losses)[None, None], kernel[None, None]).flatten()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, alpha=0.3, label="loss")
    ax.plot(range(window - 1, len(losses)), smooth, label=f"running mean ({window})")
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
