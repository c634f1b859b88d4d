"""Result grids: each hit's picture with its score and file name as the title."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from helpers.clip import load_rgb
from helpers.search import Hit


def result_grid(rows: list[tuple[str, list[Hit]]], image_root: Path, columns: int = 5) -> Figure:
    """One row per query: its label on the left, then up to `columns` hits, best first.
    Hits whose file is not on this machine (a shared cluster) show a note instead."""
    figure, axes = plt.subplots(len(rows), columns, figsize=(2.3 * columns, 2.7 * len(rows)), squeeze=False)
    for row, (query, hits) in enumerate(rows):
        for column, ax in enumerate(axes[row]):
            ax.set_axis_off()
            if column >= len(hits):
                if column == 0:
                    ax.text(0.5, 0.5, "no hits", ha="center", va="center")
                continue
            hit = hits[column]
            path = image_root / hit.filename
            if path.is_file():
                ax.imshow(load_rgb(path))
            else:
                ax.text(0.5, 0.5, "image not on\nthis machine", ha="center", va="center", fontsize=8)
            ax.set_title(f"{hit.score:.3f}\n{Path(hit.filename).name[:24]}", fontsize=8)
        axes[row][0].annotate(
            query, xy=(0, 1.32), xycoords="axes fraction", fontsize=10, fontweight="bold", annotation_clip=False
        )
    figure.tight_layout(h_pad=1.2)
    return figure
