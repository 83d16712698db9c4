"""Mask figures: which limb tokens each masking criterion keeps visible on one sequence (docs/method.md §2.3-2.6, §2.9).

Four criteria run on the same sequence, with the same weights and a generator seeded the same way:
temporal attention, spatial hierarchy, MAMP's motion-aware masking and uniform random masking, each
applied to all tokens of the sequence (masking="single" / "motion" / "random"). Every panel uses the
18 limb-joint tokens (token_joints="limbs") so that the token grids line up. Because the generators
are seeded alike, every criterion adds the same Gumbel noise to its scores: the differences between
panels come from the scores alone (MAMP keeps the *lowest* keys, so its visible set shuns the tokens
that random masking keeps: read its panel against the motion, not against panel (d)).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from hacm.cli import one_line
from hacm.data.augment import augment_batch
from hacm.data.kinect import BONES, JOINT_NAMES
from hacm.data.ntu import load_sample
from hacm.data.storage import SkeletonStore, StoreError
from hacm.config import ConfigError, apply_overrides
from hacm.model.config import PRESETS, ModelConfig
from hacm.model.mask_diagnostic import MaskingDiagnostic, diagnose_masking, present_bodies
from hacm.model.pretrainer import HACMPretrainer, to_sequences
from hacm.train.checkpoint import CheckpointError
from hacm.train.pretraining import read_pretrained_model

CRITERIA = ("attention", "hierarchy", "motion", "random")
# Fields that fix the weights' shapes or meaning: a checkpoint is only usable where they agree.
ARCHITECTURE_FIELDS = ("frames", "t_patch", "num_joints", "trunk_joints", "coords", "token_joints", "dim", "depth",
                       "heads", "mlp_ratio", "decoder_dim", "decoder_depth", "decoder_heads", "hyperbolic",
                       "curvature")

VISIBLE_COLOUR = "#1f3d8a"
MASKED_COLOUR = "#a9a9a9"
MASKED_CELL_COLOUR = "#e3e3e3"
TRUNK_COLOUR = "#b07a3b"
BONE_COLOUR = "#c4c4c4"
FIGURE_DPI = 150
GIF_DPI = 90
GIF_FPS = 4
SHOWN_PATCHES = 8
FIGURE_DRAWS = 200  # Gumbel draws behind each panel's agreement figure


class VisualizeError(ValueError):
    """A bad input to a figure command; its message is the whole error line."""


# --- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    name: str
    frames: np.ndarray  # (length, 2, 25, 3) float32
    valid_length: int  # frames with any non-zero value; crops stay within them, as in the loader


def read_sample(spec: str) -> Sample:
    """A raw NTU `.skeleton` file, or `STORE_DIR:INDEX` of a converted store."""
    path = Path(spec)
    if path.is_file():
        return _read_raw_sample(path)
    store_dir, colon, index_text = spec.rpartition(":")
    if not colon:
        if path.is_dir():
            raise VisualizeError(f"--sample {spec}: is a folder; give STORE_DIR:INDEX for a sample of a store")
        raise VisualizeError(f"--sample {spec}: no such file (expected a .skeleton file or STORE_DIR:INDEX)")
    try:
        index = int(index_text)
    except ValueError:
        raise VisualizeError(f"--sample {spec}: {index_text!r} is not a sample index (expected STORE_DIR:INDEX)") \
            from None
    return _read_store_sample(Path(store_dir), index, spec=spec)


def _read_raw_sample(path: Path) -> Sample:
    try:
        frames = load_sample(path)
    except (OSError, ValueError) as error:  # SkeletonFormatError and EmptySequenceError are ValueErrors
        raise VisualizeError(f"--sample {path}: {error}") from None
    valid = int(frames.reshape(len(frames), -1).any(axis=1).sum())
    return Sample(name=path.name.removesuffix(".skeleton"), frames=frames, valid_length=valid)


def _read_store_sample(directory: Path, index: int, *, spec: str) -> Sample:
    try:
        store = SkeletonStore(directory)
    except StoreError as error:
        raise VisualizeError(f"--sample {spec}: {error}") from None
    if not 0 <= index < len(store):
        raise VisualizeError(f"--sample {spec}: index {index} out of range (the store holds 0..{len(store) - 1})")
    valid = int(store.valid_lengths[index])
    if valid == 0:
        raise VisualizeError(f"--sample {spec}: sample {store.names[index]} has no non-zero frame")
    name = f"{store.names[index]} [{directory.parent.name}/{directory.name} #{index}]"
    return Sample(name=name, frames=np.asarray(store.sequence(index)), valid_length=valid)


def resize_to_frames(sample: Sample, *, frames: int) -> torch.Tensor:
    """The test-time centre crop resized to `frames`: (1, C=3, T, V=25, M=2) float32."""
    return augment_batch(sample.frames, torch.zeros(1, dtype=torch.int64), torch.tensor([sample.valid_length]),
                         None, frames=frames, train=False)


def read_model_overrides(path: Path) -> dict:
    """The `model:` mapping of a YAML config (other top-level keys are not ours and are ignored)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise VisualizeError(f"--config {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise VisualizeError(f"--config {path}: not valid YAML ({one_line(error, limit=200)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise VisualizeError(f"--config {path}: expected a mapping with a `model:` mapping of ModelConfig fields")
    return dict(data["model"])


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    state: dict  # HACMPretrainer state_dict
    config: ModelConfig


def read_checkpoint(path: Path) -> Checkpoint:
    """A pretraining run's checkpoint.pt, its weights checked against its own model config."""
    try:
        model_config, weights = read_pretrained_model(path)
    except CheckpointError as error:
        raise VisualizeError(f"--checkpoint: {error}") from None
    with torch.random.fork_rng(devices=[]):
        expected = HACMPretrainer(model_config).state_dict()
    mismatch = state_dict_mismatch(expected, weights)
    if mismatch is not None:
        raise VisualizeError(f"--checkpoint {path}: its weights do not match its own model config: {mismatch}")
    return Checkpoint(path=path, state=weights, config=model_config)


def resolve_model_config(*, checkpoint: Checkpoint | None, overrides: dict) -> ModelConfig:
    """Defaults < the checkpoint's model config < `overrides` (YAML, then command line), validated."""
    base = checkpoint.config.to_dict() if checkpoint is not None else {}
    try:
        config = ModelConfig.from_dict({**base, **overrides})
    except (ConfigError, TypeError) as error:
        raise VisualizeError(f"model config: {error}") from None
    if config.token_joints != "limbs":
        raise VisualizeError("model.token_joints must be 'limbs': the figure compares criteria on the 18 limb tokens "
                             "(MAE / MAMP checkpoints use all 25 joints)")
    if checkpoint is not None:
        for key in ARCHITECTURE_FIELDS:
            pretrained, requested = getattr(checkpoint.config, key), getattr(config, key)
            if pretrained != requested:
                raise VisualizeError(f"--checkpoint {checkpoint.path}: pretrained with model.{key}={pretrained!r}, "
                                     f"but the requested config has {requested!r}")
    return config


# --- masks ----------------------------------------------------------------------------------------
def criterion_config(config: ModelConfig, criterion: str) -> ModelConfig:
    """The model config of one panel: the criterion on all limb tokens, no cross-contrast."""
    overrides = {
        "attention": dict(masking="single", single_criterion="attention"),
        "hierarchy": dict(masking="single", single_criterion="hierarchy"),
        "motion": dict(masking="motion", keep_high_scores=PRESETS["mamp"]["keep_high_scores"],
                       score_temperature=PRESETS["mamp"]["score_temperature"]),
        "random": dict(masking="random"),
    }[criterion]
    return dataclasses.replace(config, token_joints="limbs", contrast_weight=0.0, **overrides)


def criterion_title(criterion: str, config: ModelConfig) -> str:
    geometry = "Poincaré-ball" if config.hyperbolic else "Euclidean"
    return {
        "attention": "temporal attention",
        "hierarchy": f"spatial hierarchy ({geometry} distances)",
        "motion": "MAMP motion-aware",
        "random": "random",
    }[criterion]


def initial_state(config: ModelConfig, *, seed: int) -> dict:
    """The weights of a freshly initialised model; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HACMPretrainer(config).state_dict()


def state_dict_mismatch(expected: dict, given: dict) -> str | None:
    """The first difference in keys or shapes between a model's state_dict and given weights, or None."""
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing:
        return f"{missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    if unexpected:
        return f"{unexpected[0]} is unexpected" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
    for key, tensor in expected.items():
        if not isinstance(given[key], torch.Tensor) or given[key].shape != tensor.shape:
            shape = tuple(given[key].shape) if isinstance(given[key], torch.Tensor) else type(given[key]).__name__
            return f"{key} is {shape} in the checkpoint, {tuple(tensor.shape)} in the model"
    return None


def criterion_model(config: ModelConfig, state: dict) -> HACMPretrainer:
    """A model of `config` holding `state` (whose shapes read_checkpoint / initial_state guarantee)."""
    with torch.random.fork_rng(devices=[]):  # the weights are replaced; keep the global RNG untouched
        model = HACMPretrainer(config)
    model.load_state_dict(state)
    return model.eval()


@dataclass(frozen=True)
class CriterionMask:
    criterion: str
    title: str
    config: ModelConfig
    masked: np.ndarray  # (S, L) bool, one row per body; token n = patch * J + joint index
    agreement: float  # share of visible tokens random masking keeps too, same noise (docs/method.md §2.10)

    def visible_count(self, body: int) -> int:
        return int((~self.masked[body]).sum())

    def shared_visible(self, other: CriterionMask, *, body: int) -> int:
        """Tokens visible under both masks: with the same noise, how far a criterion moves off random."""
        return int((~self.masked[body] & ~other.masked[body]).sum())

    def patch_grid(self, body: int) -> np.ndarray:
        """(P, J) bool, True where masked."""
        return self.masked[body].reshape(self.config.patches, self.config.joints_per_patch)


@contextmanager
def single_threaded():
    """One intra-op thread for the duration: one sample's tensors are tiny, and waking a thread pool
    costs more than it saves (on a busy machine, milliseconds per op instead of microseconds)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def plan_criterion_masks(x: torch.Tensor, *, config: ModelConfig, state: dict, seed: int) -> list[CriterionMask]:
    """The mask of every criterion for a (1, C, T, V, M) batch, same weights, same seeded generator."""
    sequences = to_sequences(x)
    present = x[..., [body for body in range(x.shape[-1]) if x[..., body].any()]]
    masks = []
    with single_threaded():
        for criterion in CRITERIA:
            panel = criterion_config(config, criterion)
            model = criterion_model(panel, state)
            tokens = model.encoder.embed(sequences)
            plan = model.plan_masks(sequences, tokens, generator=torch.Generator().manual_seed(seed))
            agreement = diagnose_masking(model, present, draws=FIGURE_DRAWS, seed=seed).groups[0].agreement
            masks.append(CriterionMask(criterion=criterion, title=criterion_title(criterion, panel), config=panel,
                                       masked=plan.masked.numpy(), agreement=agreement))
    return masks


# --- drawing --------------------------------------------------------------------------------------
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


# --- the command ------------------------------------------------------------------------------------
def render_masks(
    *,
    sample: str,
    out: Path,
    gif: Path | None = None,
    checkpoint: Path | None = None,
    config_path: Path | None = None,
    seed: int = 0,
    frames: int | None = None,
    t_patch: int | None = None,
    mask_ratio: float | None = None,
    body: int = 0,
) -> list[CriterionMask]:
    """Read and check every input, plan the four masks, write the PNG (and the GIF); returns the masks."""
    if seed < 0:
        raise VisualizeError(f"--seed must be non-negative (got {seed})")
    if gif is not None and gif.suffix.lower() != ".gif":
        raise VisualizeError(f"--gif {gif}: the file name must end in .gif")
    loaded = read_sample(sample)
    overrides = read_model_overrides(config_path) if config_path is not None else {}
    overrides.update({key: value for key, value in (("frames", frames), ("t_patch", t_patch),
                                                    ("mask_ratio", mask_ratio)) if value is not None})
    saved = read_checkpoint(checkpoint) if checkpoint is not None else None
    config = resolve_model_config(checkpoint=saved, overrides=overrides)
    x = resize_to_frames(loaded, frames=config.frames)
    if not x[..., body].any():
        raise VisualizeError(f"--body {body}: that body is absent from {loaded.name} (a one-person action?)")
    state = saved.state if saved is not None else initial_state(config, seed=seed)
    masks = plan_criterion_masks(x, config=config, state=state, seed=seed)
    context = FigureContext(xy=x[0, :2, :, :, body].permute(1, 2, 0).numpy(), body=body, sample_name=loaded.name,
                            seed=seed, weights=f"checkpoint {saved.path.parent.name}/{saved.path.name}" if saved else "random init")
    _write(lambda: draw_mask_figure(masks, context=context).savefig(out, dpi=FIGURE_DPI), out, flag="--out")
    if gif is not None:
        _write(lambda: write_mask_gif(gif, masks, context=context), gif, flag="--gif")
    return masks


def diagnose_command(*, data: Path, checkpoint: Path | None, method: str, overrides: list[str], sequences: int,
                     draws: int, seed: int) -> tuple[MaskingDiagnostic, str]:
    """The masking diagnostic of a checkpoint (or a fresh model) on a store; returns it and a title."""
    if sequences < 1 or draws < 1 or seed < 0:
        raise VisualizeError("--sequences and --draws must be positive and --seed non-negative")
    try:
        store = SkeletonStore(data)
    except StoreError as error:
        raise VisualizeError(f"--data {data}: {error}") from None
    if checkpoint is not None:
        if overrides:
            raise VisualizeError("--set changes a fresh model; a checkpoint brings its own config")
        saved = read_checkpoint(checkpoint)
        config, state, title = saved.config, saved.state, f"checkpoint {checkpoint}"
    else:
        try:  # model fields, with or without the `model.` of hacm.pretrain's --set
            fields = apply_overrides({}, [text if text.startswith("model.") else f"model.{text}"
                                          for text in overrides]).get("model", {})
            config = ModelConfig.from_dict({**PRESETS[method], **fields})
        except (ConfigError, TypeError) as error:
            raise VisualizeError(f"model config: {error}") from None
        except yaml.YAMLError as error:
            raise VisualizeError(f"--set: not valid YAML ({one_line(error, limit=200)})") from None
        state = initial_state(config, seed=seed)
        title = f"fresh {method}" + "".join(f", {text}" for text in overrides)
    try:
        x = present_bodies(store, frames=config.frames, count=sequences)
    except ValueError as error:
        raise VisualizeError(f"--data {data}: {error}") from None
    with single_threaded():
        diagnostic = diagnose_masking(criterion_model(config, state), x, draws=draws, seed=seed)
    return diagnostic, title


def _write(save, path: Path, *, flag: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save()
    except OSError as error:  # unwritable folder
        raise VisualizeError(f"{flag} {path}: {error.strerror or one_line(error, limit=200)}") from None
    except ValueError as error:  # unknown image format
        raise VisualizeError(f"{flag} {path}: {one_line(error, limit=200)}") from None

