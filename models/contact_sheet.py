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
    frames: np.ndarray, clip_starts: list[int], path: str | os.PathLike, title: str = ""
) -> None:
    """The contact sheet as a PNG, rows labelled with clip index and frame numbers (matplotlib, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pad = 2
    sheet = contact_sheet_array(frames, clip_starts, pad)
    cell_h, cell_w = frames.shape[1] + 2 * pad, frames.shape[2] + 2 * pad
    rows, cols = sheet.shape[0] // cell_h, sheet.shape[1] // cell_w
    fig = Figure(figsize=(1.6 + 0.55 * cols, 0.9 + 0.55 * rows), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(sheet, interpolation="nearest")
    bounds = [*clip_starts, len(frames)]
    ax.set_yticks([(k + 0.5) * cell_h - 0.5 for k in range(rows)])
    ax.set_yticklabels([f"clip {k}\nframes {bounds[k]}-{bounds[k + 1] - 1}" for k in range(rows)], fontsize=6)
    ax.set_xticks([(c + 0.5) * cell_w - 0.5 for c in range(cols)])
    ax.set_xticklabels([f"+{c}" for c in range(cols)], fontsize=6)
    ax.tick_params(length=0)
    ax.set_xlabel("frame within clip (red frame: first frame after a seam)", fontsize=6)
    ax.set_title(textwrap.fill(title, 70), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
