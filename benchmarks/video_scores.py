"""Scoring generated shapes videos the paper's way, with our own classifier (issue 4, item 6).

- `caption_consistency`: how often the classifier reads the captioned shape, colour and direction (the
  clip world) or motion (the long world).
- `inception_style_score` of `joint_probs`: exp(E_x KL(p(y|x) || p(y))) over the joint label, e.g.
  (shape, colour, direction), 3 * 4 * 4 = 48 classes; 1 is the minimum, 48 the maximum.
- `frechet_video_distance` between `video_features` of two sets of clips (the FVD recipe): the features
  are the classifier's penultimate layer, or those of an I3D network that a user has as a local TorchScript
  file (`load_i3d`; nothing is ever downloaded).

Videos are tensors (B, 3, F, H, W) in [-1, 1].
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F
from einops import einsum, rearrange, reduce
from torch import nn

from benchmarks.classifier import SHAPES_HEADS, Heads
from benchmarks.metrics import frechet_distance_from_stats
from samplers.validation import check_int

I3D_SIZE = 224  # I3D convention: clips (B, 3, F, 224, 224) in [-1, 1]
Classifier = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def _clips(videos: torch.Tensor, name: str = "videos") -> torch.Tensor:
    """`videos` (B >= 1, 3, F, H, W), finite, as float32."""
    if not isinstance(videos, torch.Tensor) or videos.ndim != 5 or videos.shape[1] != 3 or not len(videos):
        shape = tuple(videos.shape) if hasattr(videos, "shape") else type(videos).__name__
        raise ValueError(f"{name} must be a tensor (B >= 1, 3, F, H, W); got {shape}")
    if not torch.isfinite(videos).all():
        raise ValueError(f"{name} must be finite; got {int((~torch.isfinite(videos)).sum())} non-finite")
    return videos.detach().float()


def _batch_size(batch_size: int) -> int:
    return check_int("batch_size", batch_size, 1)


def _resize(videos: torch.Tensor, size: int) -> torch.Tensor:
    """Frames resized to size x size (trilinear with the frame count kept); unchanged if already there."""
    if videos.shape[-2:] == (size, size):
        return videos
    return F.interpolate(videos, size=(videos.shape[2], size, size), mode="trilinear", align_corners=False)


def _for_classifier(classifier: nn.Module | Classifier, videos: torch.Tensor) -> torch.Tensor:
    """Frames resized to the classifier's training size when it records one (`config.size`)."""
    size = getattr(getattr(classifier, "config", None), "size", None)
    return videos if size is None else _resize(videos, size)


@torch.no_grad()
def _batched(fn: Callable[[torch.Tensor], object], videos: torch.Tensor, batch_size: int) -> list:
    return [fn(videos[i : i + batch_size]) for i in range(0, len(videos), _batch_size(batch_size))]


def classifier_logits(
    classifier: nn.Module | Classifier, videos: torch.Tensor, batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """The classifier's logits per head, e.g. {"shape": (B, 3), "colour": (B, 4), "direction": (B, 4)}."""
    videos = _for_classifier(classifier, _clips(videos))
    parts = _batched(classifier, videos, batch_size)
    return {h: torch.cat([p[h] for p in parts]).float() for h in parts[0]}


def caption_labels(captions: Sequence[str], heads: Heads = SHAPES_HEADS) -> dict[str, torch.Tensor]:
    """Labels {head: (B,)}: per head, the first of its class names a caption uses ("a red circle moving
    right" with the shapes world's heads; "a red circle bouncing around and ..." with the long world's)."""
    vocab = {head: list(names) for head, names in heads}
    out: dict[str, list[int]] = {h: [] for h in vocab}
    for text in captions:
        words = str(text).lower().replace(",", " ").split()
        for head, names in vocab.items():
            hits = [w for w in words if w in names]
            if not hits:
                raise ValueError(f"captions must each name a {head} from {names}; got {text!r}")
            out[head].append(names.index(hits[0]))
    return {h: torch.tensor(v, dtype=torch.long) for h, v in out.items()}


def _labels(labels: dict[str, torch.Tensor], batch: int, heads) -> dict[str, torch.Tensor]:
    if not isinstance(labels, dict) or set(heads) - set(labels):
        raise ValueError(f"labels must be a dict with keys {tuple(heads)}; got {labels!r:.200}")
    out = {h: torch.as_tensor(labels[h]).long().reshape(-1) for h in heads}
    for head, value in out.items():
        if value.shape != (batch,):
            raise ValueError(
                f"labels[{head!r}] must hold B={batch} class indices; got shape {tuple(value.shape)}"
            )
    return out


def caption_consistency(
    classifier: nn.Module | Classifier,
    videos: torch.Tensor,
    labels: dict[str, torch.Tensor],
    batch_size: int = 64,
) -> dict[str, float]:
    """Fraction of clips whose predicted class is the caption's, per head of the classifier;
    "shape_and_colour": both right; "all": every head right. `labels` holds class indices (B,) per head
    (see `caption_labels`)."""
    logits = classifier_logits(classifier, videos, batch_size)
    labels = _labels(labels, len(videos), logits)
    hits = {h: logits[h].argmax(dim=1) == labels[h] for h in logits}
    scores = {h: hits[h].float().mean().item() for h in logits}
    scores["shape_and_colour"] = (hits["shape"] & hits["colour"]).float().mean().item()
    scores["all"] = torch.stack(list(hits.values())).all(dim=0).float().mean().item()
    return scores


def joint_probs(
    classifier: nn.Module | Classifier, videos: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """p(joint label | clip) as the product of the heads' softmaxes: (B, prod of class counts), e.g.
    (B, 3 * 4 * 4) for shape, colour, direction, where column s * (4 * 4) + c * 4 + d is shape s, colour
    c, direction d (the heads in the classifier's order, the last varying fastest)."""
    logits = classifier_logits(classifier, videos, batch_size)
    probs = [p.double().softmax(dim=1) for p in logits.values()]
    joint = probs[0]
    for p in probs[1:]:
        joint = rearrange(einsum(joint, p, "b j, b k -> b j k"), "b j k -> b (j k)")
    return joint


def inception_style_score(probs: torch.Tensor | np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean of the rows of `probs` (B, K) (0 log 0 = 0).

    1 when every row is the same; K when the rows are one-hot and balanced over the K classes.
    """
    p = np.asarray(probs.detach().cpu() if isinstance(probs, torch.Tensor) else probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1 or not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"probs must be a finite non-negative (B >= 1, K >= 1) array; got shape {p.shape}")
    sums = p.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        raise ValueError(f"probs rows must sum to 1 (within 1e-4); got sums in [{sums.min()}, {sums.max()}]")
    kl = scipy.special.rel_entr(p, p.mean(axis=0)).sum(axis=1)  # rel_entr(0, q) = 0
    return float(np.exp(kl.mean()))


def _features(name: str, features: torch.Tensor | np.ndarray) -> np.ndarray:
    raw = features.detach().cpu() if isinstance(features, torch.Tensor) else features
    arr = np.asarray(raw, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1 or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be a finite (n >= 2, D >= 1) array; got shape {arr.shape}")
    return arr


def frechet_video_distance(
    features_a: torch.Tensor | np.ndarray, features_b: torch.Tensor | np.ndarray
) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n, D) and (m, D) (the FVD recipe)."""
    a, b = _features("features_a", features_a), _features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same D; got {a.shape[1]} and {b.shape[1]}")
    stats = [(x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))) for x in (a, b)]
    return frechet_distance_from_stats(stats[0][0], stats[0][1], stats[1][0], stats[1][1])


def load_i3d(path: str | os.PathLike) -> torch.jit.ScriptModule:
    """An I3D feature network from a local TorchScript file (on CPU, eval mode); nothing is downloaded.

    It is called on clips (B, 3, F, 224, 224) in [-1, 1] and returns features (B, D) or (B, D, ...).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"I3D TorchScript file {file} does not exist (give the path of a local file)")
    with warnings.catch_warnings():  # TorchScript is deprecated in torch, yet it is how I3D ports ship
        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
        return torch.jit.load(str(file), map_location="cpu").eval()


def _i3d_features(i3d: torch.jit.ScriptModule, videos: torch.Tensor) -> torch.Tensor:
    out = i3d(_resize(videos, I3D_SIZE))
    if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != len(videos):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the I3D module must return a tensor (B={len(videos)}, D, ...); got {shape}")
    return reduce(out.float(), "b d ... -> b d", "mean")


def video_features(
    extractor: nn.Module | torch.jit.ScriptModule, videos: torch.Tensor, batch_size: int = 16
) -> torch.Tensor:
    """Features (B, D) of clips: a TorchScript I3D (`load_i3d`), or anything with `features` (the
    `ShapesClassifier`). For I3D the frames are resized to 224 x 224 (frame count kept)."""
    videos = _clips(videos)
    if isinstance(extractor, torch.jit.ScriptModule):
        parts = _batched(lambda v: _i3d_features(extractor, v), videos, batch_size)
    elif callable(getattr(extractor, "features", None)):
        parts = _batched(lambda v: extractor.features(_for_classifier(extractor, v)), videos, batch_size)
    else:
        raise ValueError(
            f"extractor must be a TorchScript I3D (load_i3d) or have a features method; got {type(extractor)}"
        )
    return torch.cat(parts).float()
