"""The work of the two commands of hacm.visualize: the mask figure of one sequence (`render_masks`) and the
masking diagnostic of a checkpoint or a fresh model on a store (`diagnose_command`). Each reads and checks its
inputs (hacm.visualize.inputs), plans the masks of every criterion (hacm.visualize.panels) and draws them
(hacm.visualize.drawing); a bad input is a VisualizeError.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from hacm.cli import one_line
from hacm.config import ConfigError, apply_overrides
from hacm.data.storage import SkeletonStore, StoreError
from hacm.methods import METHODS
from hacm.model.config import ModelConfig
from hacm.model.mask_diagnostic import MaskingDiagnostic, diagnose_masking, present_bodies
from hacm.visualize.panels import CriterionMask, criterion_model, plan_criterion_masks, single_threaded
from hacm.visualize.drawing import FIGURE_DPI, FigureContext, draw_mask_figure, write_mask_gif
from hacm.visualize.inputs import (
    VisualizeError,
    initial_state,
    read_checkpoint,
    read_model_overrides,
    read_sample,
    resize_to_frames,
    resolve_model_config,
)


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
            config = ModelConfig.from_dict({**METHODS[method].preset, **fields})
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
