"""How much does a noisy clip say about one word of its caption? A probe classifier per noise level.

    python -m benchmarks.word_probe --world long --model runs/long-bundle       # the motion word
    python -m benchmarks.word_probe --attribute colour                          # the bundled VidRD

`benchmarks.caption_sensitivity` asks whether a model reads a word; this asks where a model could need
to. It draws `--clips` true clips of the world and `--test-clips` held-out ones (seeded), encodes them with
the model's VAE, and trains a small 3-D convolutional classifier p(word | x_t, t) on the latents noised
at timesteps drawn uniformly from the scheduler's training range (`Probe`, `train_probe`). Then it
scores the held-out clips at each of `PROBE_TIMESTEPS`: accuracy, and cross-entropy in nats.

The held-out cross-entropy of any classifier is at least the word's entropy given x_t, so
log K - cross-entropy (K names of the attribute, drawn uniformly by the world) is a lower bound on the
information x_t carries about the word, I(word; x_t), up to the sampling noise of the held-out set.
Where it is near its clean value the noisy clip already shows the word, so a caption adds nothing a
denoiser needs; where it is near 0 the word is not yet decided by x_t.

What the word is worth to a denoiser follows (the I-MMSE relation of Guo, Shamai and Verdu): with
snr = alpha_bar / (1 - alpha_bar), the Bayes denoiser's squared error in x_0, summed over a clip's latent,
is lower with the word than without by exactly 2 dI(word; x_t)/dsnr. `word_gains` estimates it from the
probe's information by a centred difference, per latent element and in the units of the model's training
target ("word's gain"), and the table sets it beside the model's own loss with the right captions on the
same held-out clips ("model's loss", as in `caption_sensitivity`). Their ratio is about how much the
word can lower the model's loss at that noise level: the signal a model must find to learn the word.
The probe's information is a lower bound, so the gain is an estimate, not a bound. The attribute is the
first shape's (as in `caption_sensitivity`). VidRD bundles only, whose text encoder knows the world's
words; `--out` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import repeat
from torch import nn

from models.bundled import BUNDLED, BUNDLED_WORLD, load_pipeline
from models.data.shapes import frames_to_tensor
from models.data.worlds import make_world
from models.files import atomic_path
from models.loading import DamagedCheckpointError
from models.text import unknown_words
from models.threads import limit_threads
from samplers.validation import check_generator, check_int

from .caption_sensitivity import ATTRIBUTES, clip_caption, first_and_others, losses, true_clips

__all__ = ["PROBE_TIMESTEPS", "Probe", "evaluate", "labels", "probe_rows", "snr", "train_probe", "word_gains"]

PROBE_TIMESTEPS = (0, 100, 300, 500, 600, 700, 800, 900, 999)  # denser where the motion word is decided
TEST_CLIPS = 1024  # held-out clips scored at every timestep
BATCH = 64


def labels(specs, world: str, attribute: str) -> torch.Tensor:
    """The index of each spec's first-shape `attribute` among `world`'s names of it (long tensor)."""
    if world not in ATTRIBUTES:
        raise ValueError(f"world must be one of {tuple(ATTRIBUTES)}; got {world!r}")
    if attribute not in ATTRIBUTES[world]:
        raise ValueError(f"attribute must be one of {tuple(ATTRIBUTES[world])}; got {attribute!r}")
    names = ATTRIBUTES[world][attribute]
    return torch.tensor([names.index(getattr(first_and_others(s)[0], attribute)) for s in specs])


class Probe(nn.Module):
    """p(word | x_t, t): latents (B, C, F, h, w) and the timestep as an extra channel (t / train steps),
    three 3-D convolutions (the last halves h and w), a mean over space-time, a linear head."""

    def __init__(self, channels: int, classes: int, train_steps: int, width: int = 64) -> None:
        super().__init__()
        self.train_steps = train_steps
        self.features = nn.Sequential(
            nn.Conv3d(channels + 1, width, 3, padding=1), nn.SiLU(),
            nn.Conv3d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv3d(width, width, 3, padding=1, stride=(1, 2, 2)), nn.SiLU(),
        )  # fmt: skip
        self.head = nn.Linear(width, classes)

    def forward(self, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _, _, f, h, w = noisy.shape
        time = repeat(t.float() / self.train_steps, "b -> b 1 f h w", f=f, h=h, w=w)
        return self.head(self.features(torch.cat([noisy, time], dim=1)).mean(dim=(2, 3, 4)))


def _noised(latents: torch.Tensor, t: torch.Tensor, scheduler, generator: torch.Generator) -> torch.Tensor:
    return scheduler.add_noise(latents, torch.randn(latents.shape, generator=generator), t)


def train_probe(latents: torch.Tensor, targets: torch.Tensor, classes: int, scheduler, steps: int,
                generator: torch.Generator) -> Probe:  # fmt: skip
    """A `Probe` trained for `steps` Adam steps on batches of `latents` noised at uniform timesteps."""
    check_int("steps", steps, 1)
    check_generator(generator)
    train_steps = scheduler.config.num_train_timesteps
    probe = Probe(latents.shape[1], classes, train_steps)
    optimiser = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(steps):
        pick = torch.randint(len(latents), (BATCH,), generator=generator)
        t = torch.randint(0, train_steps, (BATCH,), generator=generator)
        loss = F.cross_entropy(probe(_noised(latents[pick], t, scheduler, generator), t), targets[pick])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return probe.eval()


@torch.no_grad()
def evaluate(probe: Probe, latents: torch.Tensor, targets: torch.Tensor, scheduler, timesteps,
             generator: torch.Generator) -> list[dict]:  # fmt: skip
    """Per timestep: the accuracy and cross-entropy (nats) on `latents` noised there (fresh noise from
    `generator` per timestep), and the information bound log K - cross-entropy (module docstring)."""
    classes = probe.head.out_features
    rows = []
    for timestep in timesteps:
        t = torch.full((len(latents),), timestep, dtype=torch.long)
        logits = probe(_noised(latents, t, scheduler, generator), t)
        entropy = F.cross_entropy(logits, targets).item()
        rows.append({"timestep": timestep, "accuracy": (logits.argmax(1) == targets).float().mean().item(),
                     "cross_entropy": entropy, "information": math.log(classes) - entropy,
                     "snr": snr(scheduler, timestep)})  # fmt: skip
    return rows


def snr(scheduler, timestep: int) -> float:
    """alpha_bar / (1 - alpha_bar) at `timestep`: x_t / sqrt(1 - alpha_bar) = sqrt(snr) x_0 + unit noise."""
    alpha_bar = scheduler.alphas_cumprod[timestep].item()
    return alpha_bar / (1.0 - alpha_bar)


def _target_units(scheduler, timestep: int) -> float:
    """Squared error of the scheduler's training target per squared error of x_0 at `timestep` (a =
    alpha_bar): 1 / (1 - a) for v, snr for epsilon, since x_0 = (x_t - sqrt(1 - a) eps) / sqrt(a) =
    sqrt(a) x_t - sqrt(1 - a) v."""
    alpha_bar = scheduler.alphas_cumprod[timestep].item()
    kind = scheduler.config.prediction_type
    if kind not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type must be epsilon or v_prediction; got {kind!r}")
    return snr(scheduler, timestep) if kind == "epsilon" else 1.0 / (1.0 - alpha_bar)


def word_gains(rows: list[dict], scheduler, elements: int) -> list[dict]:
    """Each row with `gain`: by the I-MMSE relation, the Bayes denoiser's summed x_0 squared error is lower
    with the word than without by 2 dI(word; x_t)/dsnr; estimated with the probe's information by a centred
    difference over the neighbouring rows, per latent element (`elements` per clip), in the units of the
    scheduler's training target. None at the first and last row, which have one neighbour."""
    found = [dict(row, gain=None) for row in rows]
    for k in range(1, len(rows) - 1):
        before, after = rows[k - 1], rows[k + 1]
        slope = (after["information"] - before["information"]) / (after["snr"] - before["snr"])
        found[k]["gain"] = 2.0 * slope / elements * _target_units(scheduler, rows[k]["timestep"])
    return found


def probe_rows(pipe, world: str, attribute: str, clips: int, steps: int, seed: int = 0,
               test_clips: int = TEST_CLIPS) -> list[dict]:  # fmt: skip
    """Train a probe on `clips` true clips of `world` and score `test_clips` others (module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    data = []
    for n in (clips, test_clips):
        frames, specs = true_clips(world, n, generator)
        with torch.no_grad():
            latents = torch.cat(
                [pipe.vae.encode(frames_to_tensor(frames[i : i + 256])) for i in range(0, n, 256)]
            )
        data.append((latents, labels(specs, world, attribute), [clip_caption(spec) for spec in specs]))
    classes = len(ATTRIBUTES[world][attribute])
    probe = train_probe(*data[0][:2], classes, pipe.scheduler, steps, generator)
    latents, targets, captions = data[1]
    rows = word_gains(evaluate(probe, latents, targets, pipe.scheduler, PROBE_TIMESTEPS, generator),
                      pipe.scheduler, latents[0].numel())  # fmt: skip
    noise = torch.Generator().manual_seed(seed + 1)  # the model's loss: its own draws, the probe's unchanged
    for row in rows:
        row["model_loss"] = losses(pipe, latents, {"right": captions}, row["timestep"], noise)["right"]
        row["share"] = None if row["gain"] is None else row["gain"] / row["model_loss"]
    return rows


def _cell(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def format_rows(rows: list[dict], classes: int) -> str:
    head = ("t", "accuracy", "cross-entropy", "information >=", "word's gain", "model's loss", "gain/loss")
    lines = [" ".join(f"{h:>14}" for h in head),
             f"{'(chance)':>14} {1 / classes:>14.3f} {math.log(classes):>14.3f} {0:>14.3f}"]  # fmt: skip
    for row in rows:
        cells = (f"{row['accuracy']:.3f}", f"{row['cross_entropy']:.3f}", f"{row['information']:.3f}",
                 _cell(row["gain"], ".5f"), f"{row['model_loss']:.5f}",
                 _cell(row["share"], ".2%"))  # fmt: skip
        lines.append(" ".join(f"{c:>14}" for c in (str(row["timestep"]), *cells)))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=BUNDLED, help="a saved VidRD (default: the bundle)")
    parser.add_argument("--world", choices=tuple(ATTRIBUTES), default=BUNDLED_WORLD, help="the model's world")
    parser.add_argument("--attribute", help="the word probed (default: motion; direction in the clip world)")
    parser.add_argument("--clips", type=int, default=8192, help="training clips (default 8192)")
    parser.add_argument("--test-clips", type=int, default=TEST_CLIPS, help=f"held-out clips ({TEST_CLIPS})")
    parser.add_argument("--steps", type=int, default=4000, help="probe training steps (default 4000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows here as JSON")
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = ATTRIBUTES[args.world]
    attribute = args.attribute or ("motion" if args.world == "long" else "direction")
    try:
        check_int("clips", args.clips, 1)
        check_int("test_clips", args.test_clips, 1)
        check_int("steps", args.steps, 1)
        check_int("seed", args.seed, 0)
        if attribute not in names:
            raise ValueError(f"--attribute must be one of {tuple(names)} in the {args.world} world; "
                             f"got {attribute!r}")  # fmt: skip
    except ValueError as err:
        parser.error(str(err))
    if args.out is not None and args.out.is_dir():
        parser.error(f"--out must be a file path; {args.out} is a folder")
    try:
        pipe = load_pipeline(args.model)
    except (FileNotFoundError, DamagedCheckpointError) as err:
        parser.error(f"--model: {err}")
    if unknown := unknown_words(pipe.text_encoder, make_world(args.world).words):
        parser.error(f"--world {args.world}: the model's text encoder does not know {unknown}; it was "
                     "trained on another world")  # fmt: skip
    with limit_threads(1):
        rows = probe_rows(pipe, args.world, attribute, args.clips, args.steps, args.seed, args.test_clips)
    print(f"the {attribute} word of {args.test_clips} held-out true clips of the {args.world} world, read "
          f"from their latents (model {args.model}) noised at t; probe trained on {args.clips} clips, "
          f"{args.steps} steps; information in nats")  # fmt: skip
    print(format_rows(rows, len(names[attribute])))
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            record = {"model": str(args.model), "world": args.world, "attribute": attribute,
                      "clips": args.clips, "test_clips": args.test_clips, "steps": args.steps,
                      "seed": args.seed, "rows": rows}  # fmt: skip
            tmp.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
