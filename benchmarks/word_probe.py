"""How much does a noisy clip say about one word of its caption? A probe classifier per noise level.

    python -m benchmarks.word_probe --world long --model runs/long-bundle       # the motion word
    python -m benchmarks.word_probe --attribute colour                          # the bundled VidRD

`benchmarks.caption_sensitivity` asks whether a model reads a word; this asks where a model could need
to. It draws `--clips` true clips of the world and `--test-clips` held-out ones (seeded), encodes them with
the model's VAE, and trains a small 3-D convolutional classifier p(word | x_t, t) on the latents noised
at timesteps drawn uniformly from the scheduler's training range (`Probe`, `train_probe`). Then it
scores the held-out clips at each of `PROBE_TIMESTEPS`: accuracy, and cross-entropy in nats.

The world draws the word uniformly, so its entropy is log K (K names of the attribute); the held-out
cross-entropy of any classifier is at least the word's entropy given x_t, so log K - cross-entropy is a
lower bound on the information x_t carries about the word, I(word; x_t), up to the sampling noise of the
held-out set. Where the true information is near its clean value the noisy clip already shows the word,
so a caption adds nothing a denoiser needs; where it is near 0 the word is not yet decided by x_t.

What the word is worth to a denoiser follows (the I-MMSE relation of Guo, Shamai and Verdu): with
snr = alpha_bar / (1 - alpha_bar), the Bayes denoiser's squared error in x_0, summed over a clip's latent,
is lower with the word than without by exactly 2 dI(word; x_t)/dsnr. `word_gains` estimates it from the
probe's information curve, per latent element and in the units of the model's training target ("word's
gain"), and the table sets it beside the model's own loss with the right captions on the same held-out
clips ("model's loss", as in `caption_sensitivity`). Their ratio ("gain/loss") is the Bayes-optimal gap
as a share of this model's loss: about how much a model that had learnt the word could lose without it.
Two caveats: the probe's information is a lower bound, so the gain is an estimate, not a bound; and it
is the word's information alone, while the model also reads the caption's other words (I(word; x_t |
the others) may differ). The attribute is the first shape's (as in `caption_sensitivity`). VidRD bundles
only, whose text encoder knows the world's words; `--out` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
from samplers.noise_level import NoiseLevel, output_from_x0
from samplers.validation import check_generator, check_int

from .caption_sensitivity import ATTRIBUTES, clip_caption, first_and_others, losses, true_clips

__all__ = ["PROBE_TIMESTEPS", "Probe", "check_probe_inputs", "check_word", "evaluate", "labels", "probe_rows",
           "snr", "target_units", "train_probe", "word_gains"]  # fmt: skip

# Denser where the long world's motion word is decided (t 500-850); neighbours give each row's slope.
PROBE_TIMESTEPS = (0, 100, 200, 300, 400, 500, 550, 600, 650, 700, 750, 800, 850, 900, 950, 999)
TEST_CLIPS = 1024  # held-out clips scored at every timestep
BATCH = 64


def check_word(world: str, attribute: str) -> None:
    """ValueError unless `world` is one of the kit's worlds and `attribute` one its captions name."""
    if world not in ATTRIBUTES:
        raise ValueError(f"world must be one of {tuple(ATTRIBUTES)}; got {world!r}")
    if attribute not in ATTRIBUTES[world]:
        raise ValueError(f"attribute must be one of {tuple(ATTRIBUTES[world])} in the {world} world; "
                         f"got {attribute!r}")  # fmt: skip


def labels(specs, world: str, attribute: str) -> torch.Tensor:
    """The index of each spec's first-shape `attribute` among `world`'s names of it (long tensor)."""
    check_word(world, attribute)
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
        noisy = scheduler.add_noise(latents[pick], torch.randn(latents[pick].shape, generator=generator), t)
        loss = F.cross_entropy(probe(noisy, t), targets[pick])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return probe.eval()


@torch.no_grad()
def evaluate(probe: Probe, latents: torch.Tensor, targets: torch.Tensor, scheduler, timesteps,
             generator: torch.Generator) -> list[dict]:  # fmt: skip
    """Per timestep: the accuracy and cross-entropy (nats) on `latents` noised there, one noise draw from
    `generator` for every timestep (so that neighbouring rows differ by the noise level alone), the
    information bound log K - cross-entropy (module docstring) and the snr. FloatingPointError naming the
    timestep where the cross-entropy is not finite (a diverged probe)."""
    classes = probe.head.out_features
    noise = torch.randn(latents.shape, generator=generator)
    rows = []
    for timestep in timesteps:
        t = torch.full((len(latents),), timestep, dtype=torch.long)
        logits = probe(scheduler.add_noise(latents, noise, t), t)
        entropy = F.cross_entropy(logits, targets).item()
        if not math.isfinite(entropy):
            raise FloatingPointError(f"the probe's cross-entropy at t = {timestep} is {entropy}: it diverged")
        rows.append({"timestep": timestep, "accuracy": (logits.argmax(1) == targets).float().mean().item(),
                     "cross_entropy": entropy, "information": math.log(classes) - entropy,
                     "snr": snr(scheduler, timestep)})  # fmt: skip
    return rows


def snr(scheduler, timestep: int) -> float:
    """a^2 / s^2 of x_t = a x_0 + s eps at `timestep` (alpha_bar / (1 - alpha_bar)): x_t / s = sqrt(snr) x_0
    + unit noise, the Gaussian channel of the I-MMSE relation. 0 where a schedule ends at zero snr."""
    level = NoiseLevel.vp(scheduler.alphas_cumprod[timestep].item())
    return level.signal**2 / level.noise**2


def target_units(scheduler, timestep: int) -> float:
    """Squared error of the scheduler's training target per squared error of x_0 at `timestep`, with x_t
    held: the square of d(output)/d(x_0) in `output_from_x0` (1 / (1 - alpha_bar) for v, snr for
    epsilon, 1 for sample). ValueError for a prediction type the kit does not know."""
    level = NoiseLevel.vp(scheduler.alphas_cumprod[timestep].item())
    kind = scheduler.config.prediction_type
    zero, one = (output_from_x0(torch.tensor(x), torch.tensor(0.0), level, kind).item() for x in (0.0, 1.0))
    return (one - zero) ** 2


def _ln_slope(rows: list[dict], k: int) -> float:
    """dI/d(ln snr) at row k: the three-point formula for unequal spacing over rows k-1, k, k+1."""
    (x0, f0), (x1, f1), (x2, f2) = ((math.log(r["snr"]), r["information"]) for r in rows[k - 1 : k + 2])
    h0, h1 = x1 - x0, x2 - x1
    return -h1 / (h0 * (h0 + h1)) * f0 + (h1 - h0) / (h0 * h1) * f1 + h0 / (h1 * (h0 + h1)) * f2


def word_gains(rows: list[dict], scheduler, elements: int) -> list[dict]:
    """Each row (in order of timestep) with `gain`: by the I-MMSE relation, the Bayes denoiser's summed
    x_0 squared error is lower with the word than without by 2 dI(word; x_t)/dsnr. Estimated from the
    probe's information, dI/dsnr = dI/d(ln snr) / snr by a three-point difference, per latent element
    (`elements` per clip), in the units of the scheduler's training target (`target_units`). None at the
    first and last row, and where the row or a neighbour has zero snr (no logarithm)."""
    found = [dict(row, gain=None) for row in rows]
    for k in range(1, len(rows) - 1):
        if min(r["snr"] for r in rows[k - 1 : k + 2]) > 0:
            slope = _ln_slope(rows, k) / rows[k]["snr"]
            found[k]["gain"] = 2.0 * slope / elements * target_units(scheduler, rows[k]["timestep"])
    return found


def check_probe_inputs(world: str, attribute: str, clips: int, test_clips: int, steps: int,
                       seed: int) -> None:  # fmt: skip
    """ValueError/TypeError naming the parameter before any work: the world, its word, the counts, the
    seed. (The scheduler's training target is checked by `target_units` once a model has loaded.)"""
    check_word(world, attribute)
    for name, value in (("clips", clips), ("test_clips", test_clips), ("steps", steps)):
        check_int(name, value, 1)
    check_int("seed", seed, 0)


def probe_rows(pipe, world: str, attribute: str, clips: int, steps: int, seed: int = 0,
               test_clips: int = TEST_CLIPS) -> list[dict]:  # fmt: skip
    """Train a probe on `clips` true clips of `world` and score `test_clips` others (module docstring)."""
    check_probe_inputs(world, attribute, clips, test_clips, steps, seed)
    target_units(pipe.scheduler, PROBE_TIMESTEPS[1])  # a training target it can convert
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
    for row in rows:  # the model's loss: one noise draw of its own for every timestep
        noise = torch.Generator().manual_seed(seed + 1)
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
    attribute = args.attribute or ("motion" if args.world == "long" else "direction")
    try:
        check_probe_inputs(args.world, attribute, args.clips, args.test_clips, args.steps, args.seed)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if args.out is not None and (args.out.is_dir() or not os.access(args.out.parent, os.W_OK)):
        parser.error(f"--out must be a file path in an existing, writable folder; got {args.out}")
    try:
        pipe = load_pipeline(args.model)
        target_units(pipe.scheduler, PROBE_TIMESTEPS[1])
    except (FileNotFoundError, DamagedCheckpointError, ValueError) as err:
        parser.error(f"--model: {err}")
    if unknown := unknown_words(pipe.text_encoder, make_world(args.world).words):
        parser.error(f"--world {args.world}: the model's text encoder does not know {unknown}; it was "
                     "trained on another world")  # fmt: skip
    with limit_threads(1):
        rows = probe_rows(pipe, args.world, attribute, args.clips, args.steps, args.seed, args.test_clips)
    print(f"the {attribute} word of {args.test_clips} held-out true clips of the {args.world} world, read "
          f"from their latents (model {args.model}) noised at t; probe trained on {args.clips} clips, "
          f"{args.steps} steps; information in nats")  # fmt: skip
    print(format_rows(rows, len(ATTRIBUTES[args.world][attribute])))
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            record = {"model": str(args.model), "world": args.world, "attribute": attribute,
                      "clips": args.clips, "test_clips": args.test_clips, "steps": args.steps,
                      "seed": args.seed, "rows": rows}  # fmt: skip
            tmp.write_text(json.dumps(record, indent=1, allow_nan=False))


if __name__ == "__main__":
    main()
