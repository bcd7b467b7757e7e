"""A small 3-D CNN reading the kit's synthetic worlds: the long world's shape, colour and motion (of the
first shape a caption names), or the clip world's shape, colour and direction (issue 4, item 6; issue 13).

It scores generated clips for caption consistency and an IS-style score, and its penultimate layer is the
feature extractor of a Fréchet video distance with our own features (`benchmarks.video_scores`).

    python -m benchmarks.classifier --world long      # the long world -> benchmarks/weights/world-classifier
    python -m benchmarks.classifier --world shapes    # the clip world -> benchmarks/weights/shapes-classifier

trains it on `LongShapes` or `MovingShapes` (a fresh, seeded batch every step), prints held-out
accuracies and saves `model.safetensors` + `config.json`. Training adds mild gaussian noise and blur so
that it still reads imperfect generated videos.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from safetensors.torch import save_file
from torch import nn

from models.bundled import BUNDLED_WORLD
from models.data.long_world import MOTIONS, LongShapes, WorldConfig
from models.data.shapes import COLOURS, DIRECTIONS, SHAPES, MovingShapes, ShapesConfig
from models.files import atomic_files
from models.loading import (
    MANIFEST,
    DamagedCheckpointError,
    check_keys,
    check_state,
    check_values,
    manifest_text,
    read_json,
    read_weights,
    verify_manifest,
)
from models.seeding import seeded
from models.threads import limit_threads
from samplers.validation import check_int, check_real

HEADS = ("shape", "colour", "direction")  # the shapes world's heads
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


Heads = tuple[tuple[str, tuple[str, ...]], ...]  # (head name, its class names) in order
SHAPES_HEADS: Heads = (("shape", SHAPES), ("colour", tuple(COLOURS)), ("direction", tuple(DIRECTIONS)))
WORLD_HEADS: Heads = (("shape", SHAPES), ("colour", tuple(COLOURS)), ("motion", tuple(MOTIONS)))
HEADS_OF = {"shapes": SHAPES_HEADS, "long": WORLD_HEADS}  # per training world (models.data.worlds)
_WEIGHTS = Path(__file__).resolve().parent / "weights"
CLASSIFIERS = {"shapes": _WEIGHTS / "shapes-classifier", "long": _WEIGHTS / "world-classifier"}
# The long world's classifier reads clips of one shape: with two, "the first shape" of a caption is not
# something a clip shows. Captions of two shapes are the judge's (benchmarks.judge).
ONE_SHAPE_WORLD = WorldConfig(two_shapes_probability=0.0)


@dataclass(frozen=True)
class ClassifierConfig:
    """Input geometry, the heads (name and class names of each) and layer widths."""

    num_frames: int = 8
    size: int = 32
    heads: Heads = SHAPES_HEADS
    channels: tuple[int, ...] = (8, 16, 32, 64)
    feature_dim: int = 96

    def __post_init__(self) -> None:
        for name in ("num_frames", "size", "feature_dim"):
            check_int(name, getattr(self, name), 1, 4096)
        try:
            if any(isinstance(names, str) for _, names in self.heads):
                raise TypeError("class names must be a sequence of strings, not one string")
            heads = tuple((str(h), tuple(str(n) for n in names)) for h, names in self.heads)
        except (TypeError, ValueError):
            raise ValueError(f"heads must be (name, class names) pairs; got {self.heads!r}") from None
        names_of = dict(heads)
        if len(names_of) != len(heads) or not {"shape", "colour"} <= set(names_of):
            raise ValueError(f"heads must have distinct names, 'shape' and 'colour' among them: {heads!r}")
        for head, names in heads:
            if len(names) < 2 or len(set(names)) != len(names):
                raise ValueError(f"heads[{head!r}] must hold at least 2 distinct class names; got {names!r}")
        object.__setattr__(self, "heads", heads)
        if not self.channels:
            raise ValueError(f"channels must hold at least one width in [1, 1024]; got {self.channels!r}")
        for width in self.channels:
            check_int("channels", width, 1, 1024)
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    @property
    def num_classes(self) -> dict[str, int]:
        return {head: len(names) for head, names in self.heads}


@dataclass(frozen=True)
class AugmentConfig:
    """Mild degradations applied to training clips so that the classifier still reads generated videos."""

    noise_std: float = 0.1  # per-clip gaussian noise level drawn uniformly in [0, noise_std]
    blur_prob: float = 0.5  # share of clips blurred spatially
    max_blur_sigma: float = 1.0  # their gaussian width drawn uniformly in [0, max_blur_sigma] pixels

    def __post_init__(self) -> None:
        check_real("noise_std", self.noise_std, 0.0, 1.0)
        check_real("blur_prob", self.blur_prob, 0.0, 1.0)
        check_real("max_blur_sigma", self.max_blur_sigma, 0.0, 5.0)


def _block(c_in: int, c_out: int, pool: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel_size=3, padding=1),
        nn.GroupNorm(math.gcd(8, c_out), c_out),
        nn.SiLU(),
        nn.MaxPool3d(pool, ceil_mode=True),  # ceil: short clips (F < 8) still fit
    )


class ShapesClassifier(nn.Module):
    """3-D CNN over clips (B, 3, F, H, W) in [-1, 1] with one head per `config.heads` (the shapes world:
    shape, colour, direction; the long world: shape, colour, motion of its first shape)."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config or ClassifierConfig()
        widths = (3, *self.config.channels)
        # The first block pools space only, so that early motion along time survives.
        pools = [(1, 2, 2)] + [(2, 2, 2)] * (len(widths) - 2)
        self.body = nn.Sequential(
            *(_block(a, b, p) for a, b, p in zip(widths[:-1], widths[1:], pools, strict=True))
        )
        self.project = nn.Sequential(nn.Linear(widths[-1], self.config.feature_dim), nn.SiLU())
        self.heads = nn.ModuleDict(
            {name: nn.Linear(self.config.feature_dim, n) for name, n in self.config.num_classes.items()}
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, feature_dim): the FVD-style feature extractor."""
        _check_clips(x)
        return self.project(reduce(self.body(x), "b c f h w -> b c", "mean"))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per head, e.g. {"shape": (B, 3), "colour": (B, 4), "direction": (B, 4)}."""
        feats = self.features(x)
        return {name: head(feats) for name, head in self.heads.items()}


def _check_clips(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[1] != 3:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"videos must be a tensor (B, 3, F, H, W); got {shape}")


def build_classifier(config: ClassifierConfig | None = None, seed: int = 0) -> ShapesClassifier:
    """A freshly initialised classifier; deterministic from `seed`, the global RNG untouched."""
    with seeded(seed):
        return ShapesClassifier(config)


# --- data -----------------------------------------------------------------------------------------------


def shapes_batch(
    dataset: MovingShapes | LongShapes, indices: range, heads: tuple[str, ...] = HEADS
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clips (B, 3, F, H, W) and labels {head: (B,)} of dataset items `indices`."""
    items = [dataset[i] for i in indices]
    videos = torch.stack([item["video"] for item in items]).float()
    labels = {h: torch.tensor([int(item["labels"][h]) for item in items]) for h in heads}
    return videos, labels


def _gaussian_kernel(sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Normalised 1-D gaussian kernels (B, 2*radius+1), one per sigma (sigma 0 -> identity)."""
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    sigma = rearrange(sigma.clamp_min(1e-3), "b -> b 1")
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum(dim=1, keepdim=True)


def blur(videos: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-clip separable spatial gaussian blur of (B, C, F, H, W) with widths `sigma` (B,)."""
    b, c, f = videos.shape[:3]
    kernel = rearrange(_gaussian_kernel(sigma).repeat_interleave(c * f, dim=0), "n k -> n 1 k")
    r = kernel.shape[2] // 2
    x = rearrange(videos, "b c f h w -> 1 (b c f) h w")
    groups = x.shape[1]
    x = F.conv2d(
        F.pad(x, (r, r, 0, 0), mode="replicate"), rearrange(kernel, "n 1 k -> n 1 1 k"), groups=groups
    )
    x = F.conv2d(
        F.pad(x, (0, 0, r, r), mode="replicate"), rearrange(kernel, "n 1 k -> n 1 k 1"), groups=groups
    )
    return rearrange(x, "1 (b c f) h w -> b c f h w", b=b, c=c, f=f)


def augment(videos: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Mild degradations of generated clips: random blur on some clips, then gaussian noise, clamped."""
    b = videos.shape[0]
    blurred = torch.rand(b, generator=generator) < cfg.blur_prob
    sigma = torch.rand(b, generator=generator) * cfg.max_blur_sigma * blurred
    if cfg.max_blur_sigma > 0 and bool(blurred.any()):
        videos = blur(videos, sigma)
    level = torch.rand(b, generator=generator) * cfg.noise_std
    noise = torch.randn(videos.shape, generator=generator)
    return (videos + rearrange(level, "b -> b 1 1 1 1") * noise).clamp(-1.0, 1.0)


# --- training and evaluation ----------------------------------------------------------------------------


def world_dataset(config: ShapesConfig | WorldConfig | None, length: int, seed: int):
    """(dataset, heads) of a world: `MovingShapes` with SHAPES_HEADS, or `LongShapes` with WORLD_HEADS."""
    if isinstance(config, WorldConfig):
        return LongShapes(length, config, seed=seed), WORLD_HEADS
    return MovingShapes(length, config=config or ShapesConfig(), seed=seed), SHAPES_HEADS


def _loss(model: ShapesClassifier, videos: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(videos)
    return sum(F.cross_entropy(logits[h], labels[h]) for h in labels)


def train_classifier(
    steps: int = 500,
    batch: int = 32,
    seed: int = 0,
    config: ShapesConfig | WorldConfig | None = None,
    lr: float = 3e-3,
    augmentation: AugmentConfig | None = None,
    threads: int = 1,
    log_every: int = 0,
) -> ShapesClassifier:
    """Train a `ShapesClassifier` on `MovingShapes(seed=seed)` (or `LongShapes` for a `WorldConfig`):
    step k reads items [k*batch, (k+1)*batch).

    Adam with a one-cycle learning-rate schedule peaking at `lr`, on `threads` intra-op threads (the
    caller's count is restored). Deterministic from `seed`: initialisation, data and augmentation.
    """
    check_int("steps", steps, 0, 10**7)
    check_int("batch", batch, 1, 4096)
    check_int("seed", seed, 0, 2**31 - 1)
    check_real("lr", lr, 1e-12, 1.0)
    check_int("threads", threads, 1, 256)
    augmentation = augmentation or AugmentConfig()
    dataset, heads = world_dataset(config, max(steps * batch, 1), seed)
    geometry = {"num_frames": dataset.config.num_frames, "size": dataset.config.size}
    model = build_classifier(ClassifierConfig(**geometry, heads=heads), seed)
    generator = torch.Generator().manual_seed(seed)
    optimiser, names = torch.optim.Adam(model.parameters(), lr=lr), tuple(dict(heads))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=max(steps, 1))
    model.train()
    with limit_threads(threads):
        for step in range(steps):
            videos, labels = shapes_batch(dataset, range(step * batch, (step + 1) * batch), names)
            loss = _loss(model, augment(videos, augmentation, generator), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if log_every and (step + 1) % log_every == 0:
                print(f"step {step + 1}/{steps}  loss {loss.item():.4f}", flush=True)
    return model.eval()


@torch.no_grad()
def evaluate_classifier(
    model: ShapesClassifier,
    length: int = 512,
    seed: int = 1,
    config: ShapesConfig | WorldConfig | None = None,
    degrade: AugmentConfig | None = None,
) -> dict[str, float]:
    """Accuracy per head on `length` clips of `MovingShapes(seed=seed)` (or `LongShapes` for a
    `WorldConfig`; use a seed not trained on), optionally degraded by `degrade` (noise and blur drawn from
    a generator seeded with `seed`)."""
    check_int("length", length, 1, 10**7)
    dataset, heads = world_dataset(config, length, seed)
    if dict(heads) != dict(model.config.heads):
        raise ValueError(f"the classifier's heads {model.config.heads} do not read this world's {heads}")
    generator, names = torch.Generator().manual_seed(seed), tuple(dict(heads))
    correct = dict.fromkeys(names, 0)
    for start in range(0, length, 128):
        videos, labels = shapes_batch(dataset, range(start, min(start + 128, length)), names)
        logits = model.eval()(videos if degrade is None else augment(videos, degrade, generator))
        for h in names:
            correct[h] += int((logits[h].argmax(dim=1) == labels[h]).sum())
    return {h: correct[h] / length for h in names}


# --- saving and loading ---------------------------------------------------------------------------------


def save_classifier(model: ShapesClassifier, path: str | os.PathLike) -> Path:
    """Write `model.safetensors` and `config.json` under the folder `path`, together (both or neither).

    Where the folder already has a `manifest.json` (the committed classifier), it is rewritten with them,
    so it never goes stale; `models.loading.write_manifest(path)` adds one to a folder that has none.
    """
    root = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    targets = {WEIGHTS_FILE: root / WEIGHTS_FILE, CONFIG_FILE: root / CONFIG_FILE}
    if (root / MANIFEST).is_file():
        targets[MANIFEST] = root / MANIFEST
    with atomic_files(targets) as tmp:
        save_file(state, str(tmp[WEIGHTS_FILE]), metadata={"format": "pt"})
        tmp[CONFIG_FILE].write_text(json.dumps(asdict(model.config), indent=2) + "\n")
        if MANIFEST in tmp:
            tmp[MANIFEST].write_text(manifest_text({n: tmp[n] for n in (WEIGHTS_FILE, CONFIG_FILE)}))
    return root


def load_classifier(path: str | os.PathLike) -> ShapesClassifier:
    """A `ShapesClassifier` (eval mode) from a folder written by `save_classifier`, loaded strictly: its
    manifest (where it has one) verified first, then the config's keys (exactly ClassifierConfig's
    fields) and the weights' names, shapes and values (see `models.loading`); a `DamagedCheckpointError`
    (a ValueError) names the file and the key or tensor otherwise."""
    root = Path(path)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (root / name).is_file():
            raise FileNotFoundError(f"the saved shapes classifier at {root} lacks {root / name}")
    if (root / MANIFEST).is_file():
        world = {v: k for k, v in CLASSIFIERS.items()}.get(root.resolve(), "long or shapes")
        hint = f"restore it, or retrain it: python -m benchmarks.classifier --world {world} --out {root}"
        verify_manifest(root, hint)
    config = _read_classifier_config(root / CONFIG_FILE)
    state = read_weights(root / WEIGHTS_FILE)
    model = ShapesClassifier(config)
    check_state(root / WEIGHTS_FILE, model.state_dict(), state)
    check_values(root / WEIGHTS_FILE, state)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _read_classifier_config(file: Path) -> ClassifierConfig:
    raw = read_json(file)
    check_keys(file, raw, {f.name for f in fields(ClassifierConfig)}, "ClassifierConfig")
    try:
        return ClassifierConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    except (TypeError, ValueError) as err:
        raise DamagedCheckpointError(f"{file}: not a usable ClassifierConfig ({err})") from err


# --- command line ---------------------------------------------------------------------------------------


DEGRADED = AugmentConfig(noise_std=0.2, blur_prob=1.0, max_blur_sigma=1.5)  # harsher than training


def _format(accuracy: dict[str, float]) -> str:
    return ", ".join(f"{h} {a:.4f}" for h, a in accuracy.items())


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", choices=tuple(HEADS_OF), default=BUNDLED_WORLD,
                        help="the world it reads (default: the bundled model's)")
    parser.add_argument("--out", help="output folder (default: the world's bundled classifier folder)")
    parser.add_argument("--steps", type=int, help="default 500 (clip world) or 2500 (long world)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads while training (1 is about as fast on 2 cores, and safe when busy)",
    )
    parser.add_argument("--eval-seed", type=int, default=12345, help="seed of the held-out clips")
    parser.add_argument("--eval-clips", type=int, default=1024)
    args = parser.parse_args(argv)
    wall, cpu = time.perf_counter(), time.process_time()
    world = ONE_SHAPE_WORLD if args.world == "long" else ShapesConfig()
    steps = args.steps or (2500 if args.world == "long" else 500)
    model = train_classifier(steps, args.batch, args.seed, world, threads=args.threads, log_every=50)
    print(f"trained in {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")
    held_out = {"length": args.eval_clips, "seed": args.eval_seed, "config": world}
    print("held-out accuracy: " + _format(accuracy := evaluate_classifier(model, **held_out)))
    degraded = evaluate_classifier(model, degrade=DEGRADED, **held_out)
    print(f"held-out accuracy, degraded ({DEGRADED}): " + _format(degraded))
    print(f"saved to {save_classifier(model, args.out or CLASSIFIERS[args.world])}")
    return accuracy


if __name__ == "__main__":
    main()
