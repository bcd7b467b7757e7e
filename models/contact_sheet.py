"""A contact sheet of a long video: one row per clip, the frame right after each seam marked in red."""

from __future__ import annotations

import os
import textwrap
from itertools import pairwise

import numpy as np
from einops import rearrange

SEAM_RGB = (230, 0, 0)  # the frame around the first frame after a seam
CELL_RGB = (200, 200, 200)  # the frame around every other frame


def contact_sheet_array(frames: np.ndarray, clip_starts: list[int], pad: int = 2) -> np.ndarray:
    """One row per clip, every frame in a `pad`-px frame: red around the first frame of each clip after
    the first (the frame right after a seam), grey elsewhere; cells past a short clip's end are white.

    Returns (K * (H + 2 pad), C * (W + 2 pad), 3) uint8, C = the longest clip's length.
    """
    bounds = [*clip_starts, len(frames)]
    clips = [frames[a:b] for a, b in pairwise(bounds)]
    h, w = frames.shape[1:3]
    grid = np.full((len(clips), max(map(len, clips)), h + 2 * pad, w + 2 * pad, 3), 255, dtype=np.uint8)
    for k, clip in enumerate(clips):
        grid[k, : len(clip)] = SEAM_RGB if k else CELL_RGB
        grid[k, 1 : len(clip)] = CELL_RGB
        grid[k, : len(clip), pad : pad + h, pad : pad + w] = clip
    return rearrange(grid, "r c h w ch -> (r h) (c w) ch")


def save_contact_sheet(
    frames: np.ndarray,
    clip_starts: list[int],
    path: str | os.PathLike,
    title: str = "",
    rows: list[tuple[int, int]] | None = None,
) -> None:
    """The contact sheet as a PNG, rows labelled with clip index and frame numbers (matplotlib, Agg).

    `rows` (clip index, first frame in the long video) labels each row when `frames` hold only some of
    the video's clips (a sheet of bounded size for a long video); by default row k is clip k."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pad = 2
    sheet = contact_sheet_array(frames, clip_starts, pad)
    cell_h, cell_w = frames.shape[1] + 2 * pad, frames.shape[2] + 2 * pad
    height, cols = sheet.shape[0] // cell_h, sheet.shape[1] // cell_w
    fig = Figure(figsize=(1.6 + 0.55 * cols, 0.9 + 0.55 * height), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(sheet, interpolation="nearest")
    ax.set_yticks([(k + 0.5) * cell_h - 0.5 for k in range(len(clip_starts))])
    ax.set_yticklabels(_row_labels(frames, clip_starts, rows), fontsize=6)
    ax.set_xticks([(c + 0.5) * cell_w - 0.5 for c in range(cols)])
    ax.set_xticklabels([f"+{c}" for c in range(cols)], fontsize=6)
    ax.tick_params(length=0)
    ax.set_xlabel("frame within clip (red frame: first frame after a seam)", fontsize=6)
    ax.set_title(textwrap.fill(title, 70), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _row_labels(frames: np.ndarray, clip_starts: list[int], rows: list[tuple[int, int]] | None) -> list[str]:
    """'clip k / frames a-b' for each row, in the long video's numbering."""
    lengths = np.diff([*clip_starts, len(frames)]).tolist()
    if rows is None:
        rows = list(zip(range(len(clip_starts)), clip_starts, strict=True))
    if len(rows) != len(clip_starts):
        raise ValueError(f"rows must label each of the {len(clip_starts)} rows; got {len(rows)}")
    return [f"clip {k}\nframes {a}-{a + n - 1}" for (k, a), n in zip(rows, lengths, strict=True)]
