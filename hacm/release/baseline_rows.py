"""The MAE and MAMP rows: maoyunyao/MAMP's model_mae / model_mamp and its evaluation model against hacm's
`mae` / `mamp` presets holding the same weights, on the same input and the same masking noise.

Noise. MAMP keeps the tokens with the smallest log p + Gumbel(u) (its motion-aware masking) and MAE the
smallest u; hacm keeps the largest selection keys, which for MAMP (keep_high_scores false) are the same
tokens, and for MAE (equal scores) the largest u. So MAMP is handed hacm's uniforms as they are and MAE
their mirror 1 - u: the same draw keeps the same tokens on both sides.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hacm.methods import METHODS
from hacm.model.pretrainer import MaskPlan, gather_tokens
from hacm.release.checkout import MAMP_FORWARD, ReleaseError, mamp_eval_model, mamp_model
from hacm.release.encoder_rows import features_row, weights_row
from hacm.release.hacm_rows import natural_restore
from hacm.release.noise import hacm_generator, hacm_uniforms, served
from hacm.release.pairs import hacm_config, hacm_pair, mamp_args, perturb_biases_and_norms, synthetic_batch
from hacm.release.rows import Row, compared, kept_sets

BASELINES = ("mae", "mamp")  # the methods these rows compare; each gets its own weights seed
# The masking method each model's forward_encoder calls, and how the served uniform relates to hacm's.
_MASKING = {"mamp": "motion_aware_random_masking", "mae": "random_masking"}


def _their_forward(model: torch.nn.Module, kind: str, x: torch.Tensor):
    try:
        with torch.no_grad():
            return model(x, **MAMP_FORWARD[kind])
    except Exception as error:
        raise ReleaseError(f"MAMP's {kind} forward failed: {type(error).__name__}: {error}") from None


def _with_fixed_mask(model: torch.nn.Module, kind: str, x: torch.Tensor, plan: MaskPlan):
    """MAMP's loss and prediction with its masking replaced by hacm's kept tokens (in hacm's order)."""
    def fixed(tokens, *_args):
        restore = natural_restore(plan.visible, plan.masked)
        return gather_tokens(tokens, plan.visible), plan.masked.float(), restore, plan.visible

    setattr(model, _MASKING[kind], fixed)
    try:
        loss, prediction, _ = _their_forward(model, kind, x)
    finally:
        delattr(model, _MASKING[kind])
    return loss, prediction


def baseline_rows(checkout: Path, kind: str, *, size: str, seed: int = 0) -> list[Row]:
    """Every row of `kind` (mae, mamp) at `size` (small: D 64, depth 2, decoder depth 1, T 40; paper: MAMP's
    NTU-60 x-sub config, D 256, depth 8, decoder depth 3, T 120)."""
    method, args = METHODS[kind].label, mamp_args(size)
    weights_seed = seed + BASELINES.index(kind)  # MAE's and MAMP's weights differ, as trained ones would
    torch.manual_seed(weights_seed)
    theirs_model = mamp_model(checkout, kind, model_args=args).eval()
    perturb_biases_and_norms(theirs_model, seed=weights_seed)
    config = hacm_config(args, kind, mask_ratio=MAMP_FORWARD[kind]["mask_ratio"],
                         **({"score_max_fraction": MAMP_FORWARD[kind]["motion_aware_tau"]} if kind == "mamp" else {}))
    model, copy = hacm_pair(theirs_model, config, kind)
    rows = [weights_row(method, copy)]
    if copy.problems:
        return rows
    x = synthetic_batch(args["num_frames"], seed=seed)
    rows.append(features_row(method, mamp_eval_model(checkout, model_args=args), theirs_model.state_dict(),
                             model.encoder, x))

    length = config.tokens
    theirs_count = int(length * (1 - MAMP_FORWARD[kind]["mask_ratio"]))  # MAMP's len_keep
    ours_count = config.visible_per_group(length)
    rows.append(Row(method, "visible tokens K", abs(theirs_count - ours_count), 0.0,
                    f"MAMP int(L(1-r)) = {theirs_count}, hacm {ours_count} of L = {length}"))
    with torch.no_grad():
        out = model(x, generator=hacm_generator(seed))
    (uniforms,) = hacm_uniforms(seed, [tuple(out.plan.masked.shape)])
    with served([uniforms if kind == "mamp" else 1 - uniforms]):
        loss, _, mask = _their_forward(theirs_model, kind, x)
    rows.append(kept_sets(method, "kept tokens, same uniforms", mask == 0, ~out.plan.masked))
    fixed, prediction = _with_fixed_mask(theirs_model, kind, x, out.plan)
    rows += [compared(method, "decoder predictions, fixed mask", prediction, out.prediction),
             compared(method, "reconstruction loss, fixed mask", fixed, out.loss,
                      detail=f"MAMP {fixed.item():.7f}, hacm {out.loss.item():.7f}"),
             compared(method, "loss, each side's own forward", loss, out.loss,
                      detail=f"MAMP {loss.item():.7f}, hacm {out.loss.item():.7f}")]
    return rows
