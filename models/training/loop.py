"""A resumable training loop: atomic checkpoints, exact resume, a loss curve.

All randomness of a run (batches, noise, timesteps) comes from one `torch.Generator` whose state is part
of the checkpoint, so a run killed after a checkpoint and resumed reaches bit for bit the state of an
uninterrupted run with the same seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from samplers.validation import check_int, check_real

from ..files import atomic_path

CHECKPOINT = "checkpoint.pt"


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
        check_real("grad_clip", self.grad_clip, 0.0)


def save_checkpoint(
    path: Path, model: nn.Module, optimiser, step: int, generator, losses: list[float]
) -> None:
    """Write the whole training state to `path` atomically (temp file + rename)."""
    state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
             "generator": generator.get_state(), "losses": losses}  # fmt: skip
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
) -> list[float]:
    """Minimise `loss_fn(generator)` over `model`'s trainable parameters; returns the loss history.

    `model` holds everything whose state the checkpoint must keep; only parameters with
    requires_grad are optimised. With `resume`, an existing checkpoint in `out` is continued.
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
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        generator.set_state(state["generator"])
        step, losses = state["step"], state["losses"]
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
                save_checkpoint(checkpoint, model, optimiser, step, generator, losses)
    return losses


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
