"""Drawing the masks: one row per criterion (the skeleton at evenly spaced time patches and the token grid),
and an animated GIF of the criteria side by side over all time patches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from hacm.data.kinect import BONES, JOINT_NAMES
from hacm.visualize.panels import FIGURE_DRAWS, CriterionMask

VISIBLE_COLOUR = "#1f3d8a"
MASKED_COLOUR = "#a9a9a9"
MASKED_CELL_COLOUR = "#e3e3e3"
TRUNK_COLOUR = "#b07a3b"
BONE_COLOUR = "#c4c4c4"
FIGURE_DPI = 150
GIF_DPI = 90
GIF_FPS = 4
SHOWN_PATCHES = 8


@dataclass(frozen=True)
class FigureContext:
    """What every panel of a figure shares."""

    xy: np.ndarray  # (T, 25, 2) x, y of the chosen body
    body: int
    sample_name: str
    seed: int
    weights: str  # "checkpoint NAME" or "random init"

    @property
    def limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Axis limits holding the body in every frame it appears in, with a margin."""
        present = self.xy[np.abs(self.xy).sum(axis=(1, 2)) > 0].reshape(-1, 2)
        low, high = present.min(axis=0), present.max(axis=0)
        margin = 0.08 * (high - low).max() + 1e-3
        return (low[0] - margin, high[0] + margin), (low[1] - margin, high[1] + margin)


def shown_patches(patches: int, *, count: int) -> list[int]:
    """`count` evenly spaced time patches, first and last included."""
    return sorted(set(np.linspace(0, patches - 1, min(count, patches)).round().astype(int).tolist()))


def patch_frame(patch: int, *, t_patch: int) -> int:
    """The frame drawn for a time patch: its middle one."""
    return patch * t_patch + t_patch // 2


def legend_handles(*, marker_size: float) -> list:
    return [
        Line2D([], [], ls="", marker="o", ms=marker_size, color=VISIBLE_COLOUR, label="visible limb token"),
        Line2D([], [], ls="", marker="x", ms=marker_size, mew=1.4, color=MASKED_COLOUR, label="masked limb token"),
        Line2D([], [], ls="", marker="s", ms=marker_size * 0.8, color=TRUNK_COLOUR, label="trunk joint (parent)"),
        Line2D([], [], color=BONE_COLOUR, lw=1.5, label="bone"),
        Patch(facecolor=VISIBLE_COLOUR, label="visible token (grid)"),
        Patch(facecolor=MASKED_CELL_COLOUR, edgecolor="#bdbdbd", label="masked token (grid)"),
    ]


def draw_skeleton(ax, *, joints: np.ndarray, token_joint_ids: tuple[int, ...], masked: np.ndarray,
                  limits: tuple, marker_size: float) -> None:
    """One frame of one body, x vs y; limb joints coloured by their token's mask (masked: (J,) bool)."""
    ax.add_collection(LineCollection([joints[[a, b]] for a, b in BONES], colors=BONE_COLOUR, linewidths=1.3,
                                     zorder=1))
    trunk = [j for j in range(len(joints)) if j not in token_joint_ids]
    ids = np.asarray(token_joint_ids)
    area = marker_size**2
    ax.scatter(*joints[trunk].T, s=area * 0.7, marker="s", color=TRUNK_COLOUR, zorder=2, linewidths=0)
    ax.scatter(*joints[ids[~masked]].T, s=area, marker="o", color=VISIBLE_COLOUR, zorder=3, linewidths=0)
    ax.scatter(*joints[ids[masked]].T, s=area, marker="x", color=MASKED_COLOUR, zorder=3, linewidths=1.4)
    ax.set(xlim=limits[0], ylim=limits[1], xticks=[], yticks=[])
    ax.set_aspect("equal", adjustable="box")
    for spine in ax.spines.values():
        spine.set_color("#d9d9d9")


def label_scale(ax) -> None:
    """Coordinates in metres on one skeleton panel of a row; the others share its limits."""
    ax.xaxis.set_major_locator(MaxNLocator(2))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=6, length=2, pad=1)
    ax.set_xlabel("x (m)", fontsize=7, labelpad=1)
    ax.set_ylabel("y (m)", fontsize=7, labelpad=1)


def draw_token_grid(ax, *, grid: np.ndarray, token_joint_ids: tuple[int, ...], shown: list[int]) -> None:
    """The whole mask at once: limb joints (rows) x time patches (columns); grid: (P, J) bool, True = masked."""
    patches, joints = grid.shape
    cmap = ListedColormap([MASKED_CELL_COLOUR, VISIBLE_COLOUR])
    ax.imshow((~grid).T.astype(int), cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(joints), [JOINT_NAMES[j] for j in token_joint_ids], fontsize=6)
    ax.set_xticks(shown, [str(p) for p in shown], fontsize=7)
    ax.set_xticks(np.arange(-0.5, patches), minor=True)
    ax.set_yticks(np.arange(-0.5, joints), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("time patch", fontsize=7)
    ax.set_ylabel("limb joint", fontsize=7)


def draw_mask_figure(masks: list[CriterionMask], *, context: FigureContext) -> Figure:
    """One row per criterion: the skeleton at evenly spaced time patches and the full token grid."""
    config = masks[0].config
    shown = shown_patches(config.patches, count=SHOWN_PATCHES)
    limits = context.limits
    figure = Figure(figsize=(1.05 * len(shown) + 4.4, 2.75 * len(masks) + 1.1), layout="constrained")
    rows = figure.subfigures(len(masks), 1)
    for row_index, (row, mask) in enumerate(zip(rows, masks)):
        axes = row.subplots(1, len(shown) + 1, gridspec_kw={"width_ratios": [1.0] * len(shown) + [3.6]})
        grid = mask.patch_grid(context.body)
        for ax, patch in zip(axes, shown):
            frame = patch_frame(patch, t_patch=config.t_patch)
            draw_skeleton(ax, joints=context.xy[frame], token_joint_ids=config.token_joint_ids, masked=grid[patch],
                          limits=limits, marker_size=4.2)
            ax.set_title(f"patch {patch}\nframe {frame}", fontsize=7, pad=3)
        label_scale(axes[0])
        draw_token_grid(axes[-1], grid=grid, token_joint_ids=config.token_joint_ids, shown=shown)
        axes[-1].set_title("token grid: limb joint × time patch", fontsize=7, pad=3)
        row.suptitle(f"({chr(ord('a') + row_index)}) {mask.title} — {mask.visible_count(context.body)} of "
                     f"{config.tokens} visible · agreement with random masking {mask.agreement:.2f} "
                     f"({FIGURE_DRAWS} draws)", x=0.01, ha="left", fontsize=10, fontweight="bold")
    sizes = f"T={config.frames}, t_patch={config.t_patch}, mask ratio {config.mask_ratio:g}"
    figure.suptitle(f"Masks by criterion · {context.sample_name} · body {context.body} · seed {context.seed} · "
                    f"{sizes} · {context.weights}", fontsize=11)
    figure.legend(handles=legend_handles(marker_size=6), loc="outside lower center", ncols=6, fontsize=8,
                  frameon=False)
    return figure


def write_mask_gif(path: Path, masks: list[CriterionMask], *, context: FigureContext) -> None:
    """The four criteria side by side, one GIF frame per time patch."""
    config = masks[0].config
    limits = context.limits
    figure = Figure(figsize=(2.0 * len(masks), 4.2))
    figure.subplots_adjust(left=0.02, right=0.98, top=0.78, bottom=0.12, wspace=0.15)
    axes = figure.subplots(1, len(masks))
    heading = figure.suptitle("", fontsize=10)
    figure.legend(handles=legend_handles(marker_size=6)[:3], loc="lower center", ncols=3, fontsize=8, frameon=False)

    def draw_patch(patch: int) -> None:
        frame = patch_frame(patch, t_patch=config.t_patch)
        heading.set_text(f"{context.sample_name} · body {context.body} · seed {context.seed}\n"
                         f"time patch {patch} of {config.patches} · frames {patch * config.t_patch}–"
                         f"{(patch + 1) * config.t_patch - 1} · {context.weights}")
        for ax, mask in zip(axes, masks):
            ax.clear()
            masked = mask.patch_grid(context.body)[patch]
            draw_skeleton(ax, joints=context.xy[frame], token_joint_ids=config.token_joint_ids, masked=masked,
                          limits=limits, marker_size=5)
            ax.set_title(f"{mask.title.split(' (')[0]}\n{int((~masked).sum())} of {len(masked)} visible",
                         fontsize=8)

    animation = FuncAnimation(figure, draw_patch, frames=range(config.patches), init_func=lambda: None,
                              interval=1000 / GIF_FPS)
    animation.save(path, writer=PillowWriter(fps=GIF_FPS), dpi=GIF_DPI)
