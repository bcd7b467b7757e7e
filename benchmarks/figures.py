"""Saving the benchmarks' matplotlib figures: laid out, written atomically as PNG, closed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from models.files import atomic_path


def save_figure(fig, path, dpi: int = 100) -> None:
    """Lay `fig` out, write it to `path` as a PNG in one rename (a failure leaves the old file), close it."""
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
