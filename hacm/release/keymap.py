"""The one key map from the authors' state dicts (the release's HA-CM, MAMP's model_mamp / model_mae and
their evaluation models) to hacm's HACMPretrainer keys; torch-free, on names (and shapes) only.

Every tensor keeps its shape and values; only names change (fidelity review 2, §1):

    joints_embed.proj.*         encoder.patch_embed.*
    pos_embed / temp_embed      encoder.joint_embed / encoder.time_embed
    blocks.i.{norm1,attn.qkv,attn.proj,norm2}.*   encoder.transformer.blocks.i.(same)
    blocks.i.mlp.fc1 / fc2.*    encoder.transformer.blocks.i.mlp.0 / mlp.2.*
    norm.*                      encoder.transformer.norm.*
    decoder_embed.*             decoder_embed.*
    decoder_pos_embed / decoder_temp_embed   decoder_joint_embed / decoder_time_embed
    decoder_blocks.i.*          decoder.blocks.i.* (mlp.fc1 / fc2 as above)
    decoder_norm.* / decoder_pred.*          decoder.norm.* / head.*
    release-hacm only:  l1.weight, l1.bias -> w_q, b_q;  l2.weight, l2.bias -> w_k, b_k;
                        mask_token_t -> mask_token (its decoder's mask token)
    mamp, mae:          mask_token -> mask_token

Keys their forward never reads, known and dropped: the release's decoder_embed_{s,t}, decoder_fc,
decoder_fc_{s,t}, mask_token and mask_token_s; every evaluation model's classifier head.* (hacm's `head`
is the decoder's prediction). hacm keys no source has: geoopt's curvature buffer (a setting), and for
mamp / mae the temporal criterion's w_q, b_q, w_k, b_k (their masking never reads them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from hacm.release.kinds import KINDS

Value = TypeVar("Value")
ENCODER_PREFIX = "encoder."
_BLOCK_PARTS = {"norm1": "norm1", "attn.qkv": "attn.qkv", "attn.proj": "attn.proj", "norm2": "norm2",
                "mlp.fc1": "mlp.0", "mlp.fc2": "mlp.2"}
_BLOCK = re.compile(r"^(blocks|decoder_blocks)\.(\d+)\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\."
                    r"(weight|bias)$")
_BLOCK_STACKS = {"blocks": "encoder.transformer.blocks", "decoder_blocks": "decoder.blocks"}
# Whole-name renames, the same for every source.
_COMMON = {
    "pos_embed": "encoder.joint_embed",
    "temp_embed": "encoder.time_embed",
    "decoder_pos_embed": "decoder_joint_embed",
    "decoder_temp_embed": "decoder_time_embed",
}
# Module renames (name.weight / name.bias), the same for every source.
_COMMON_MODULES = {
    "joints_embed.proj": "encoder.patch_embed",
    "norm": "encoder.transformer.norm",
    "decoder_embed": "decoder_embed",
    "decoder_norm": "decoder.norm",
    "decoder_pred": "head",
}
_SOURCE_RENAMES = {
    "release-hacm": {"l1.weight": "w_q", "l1.bias": "b_q", "l2.weight": "w_k", "l2.bias": "b_k",
                     "mask_token_t": "mask_token"},
    "mamp": {"mask_token": "mask_token"},
    "mae": {"mask_token": "mask_token"},
}
_RELEASE_UNUSED_MODULES = ("decoder_embed_s", "decoder_embed_t", "decoder_fc", "decoder_fc_s", "decoder_fc_t")
_RELEASE_UNUSED = ("mask_token", "mask_token_s")
_CLASSIFIER = "head."  # the evaluation models' action head, trained anew by every evaluation
CURVATURE_BUFFER = "encoder.manifold.isp_c"
_TEMPORAL_CRITERION = ("w_q", "b_q", "w_k", "b_k")


class KeyMapError(ValueError):
    """A source or a state dict the key map cannot take; the message is one line."""


def _check_source(source: str) -> None:
    if source not in KINDS:
        raise KeyMapError(f"unknown source {source!r}; expected one of {', '.join(KINDS)}")


def hacm_key(key: str, source: str) -> str | None:
    """hacm's name for the source's `key`; None for a key the source's forward never reads (known, dropped).
    KeyMapError for a key the map does not know."""
    _check_source(source)
    if key in _COMMON:
        return _COMMON[key]
    if key in _SOURCE_RENAMES[source]:
        return _SOURCE_RENAMES[source][key]
    block = _BLOCK.match(key)
    if block:
        stack, index, part, leaf = block.groups()
        return f"{_BLOCK_STACKS[stack]}.{index}.{_BLOCK_PARTS[part]}.{leaf}"
    module, _, leaf = key.rpartition(".")
    if leaf in ("weight", "bias") and module in _COMMON_MODULES:
        return f"{_COMMON_MODULES[module]}.{leaf}"
    if key.startswith(_CLASSIFIER):
        return None
    if source == "release-hacm" and (key in _RELEASE_UNUSED or module in _RELEASE_UNUSED_MODULES):
        return None
    raise KeyMapError(f"the key map does not know the {source} key {key!r}")


def hacm_only_keys(source: str, *, hyperbolic: bool) -> tuple[str, ...]:
    """hacm's keys that no `source` state dict holds: they keep hacm's own values."""
    _check_source(source)
    keys = (CURVATURE_BUFFER,) if hyperbolic else ()
    return keys + (_TEMPORAL_CRITERION if source != "release-hacm" else ())


@dataclass(frozen=True)
class MappedKeys:
    renamed: dict[str, str]  # source key -> hacm key
    dropped: tuple[str, ...]  # source keys the source's forward never reads
    unknown: tuple[str, ...]  # source keys the map does not know


def map_keys(keys: Iterable[str], source: str) -> MappedKeys:
    """Each source key's hacm name, the dropped keys and the unknown ones (in the given order)."""
    renamed, dropped, unknown = {}, [], []
    for key in keys:
        try:
            target = hacm_key(key, source)
        except KeyMapError:
            unknown.append(key)
            continue
        if target is None:
            dropped.append(key)
        else:
            renamed[key] = target
    return MappedKeys(renamed=renamed, dropped=tuple(dropped), unknown=tuple(unknown))


def map_state(state: Mapping[str, Value], source: str) -> tuple[dict[str, Value], MappedKeys]:
    """The source state dict under hacm's names (dropped keys left out), and the map's account of it."""
    mapped = map_keys(state, source)
    return {target: state[key] for key, target in mapped.renamed.items()}, mapped


def encoder_part(state: Mapping[str, Value]) -> dict[str, Value]:
    """The SkeletonEncoder's entries of a HACMPretrainer state dict, under the encoder's own names."""
    return {key[len(ENCODER_PREFIX):]: value for key, value in state.items() if key.startswith(ENCODER_PREFIX)}


_HACM_BLOCK = re.compile(r"^(encoder\.transformer\.blocks|decoder\.blocks)\.(\d+)\."
                         r"(norm1|attn\.qkv|attn\.proj|norm2|mlp\.0|mlp\.2)\.(weight|bias)$")


def source_key(key: str, source: str) -> str | None:
    """The source's name for hacm's `key` (the inverse of hacm_key); None for a key no source has."""
    _check_source(source)
    inverse = {target: name for name, target in {**_COMMON, **_SOURCE_RENAMES[source]}.items()}
    if key in inverse:
        return inverse[key]
    block = _HACM_BLOCK.match(key)
    if block:
        stack, index, part, leaf = block.groups()
        stacks = {target: name for name, target in _BLOCK_STACKS.items()}
        parts = {target: name for name, target in _BLOCK_PARTS.items()}
        return f"{stacks[stack]}.{index}.{parts[part]}.{leaf}"
    module, _, leaf = key.rpartition(".")
    modules = {target: name for name, target in _COMMON_MODULES.items()}
    return f"{modules[module]}.{leaf}" if leaf in ("weight", "bias") and module in modules else None


def coverage_problems(mapped: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], *,
                      skipped: Iterable[str] = (), source: str | None = None, prefix: str = "",
                      limit: int = 3) -> list[str]:
    """What keeps mapped shapes (hacm key -> shape) from filling `expected` (hacm key -> shape), apart from
    the `skipped` hacm keys: the first `limit` missing keys, unexpected keys and shape mismatches, each named
    by its `source` key where there is one. `prefix`: what the keys lack of HACMPretrainer's names
    ('encoder.' for a SkeletonEncoder's). [] when they fit."""
    skipped = set(skipped)

    def called(key: str) -> str:
        theirs = source_key(prefix + key, source) if source is not None else None
        return f"{theirs} (hacm {prefix}{key})" if theirs else f"{prefix}{key}"

    def listed(what: str, keys: list[str]) -> str:
        return f"{what} " + ", ".join(called(k) for k in keys[:limit]) + (" ..." if len(keys) > limit else "")

    missing = [key for key in expected if key not in mapped and key not in skipped]
    unexpected = [key for key in mapped if key not in expected]
    wrong = [key for key in mapped if key in expected and tuple(mapped[key]) != tuple(expected[key])]
    problems = [listed("missing", missing)] if missing else []
    problems += [listed("unexpected", unexpected)] if unexpected else []
    problems += [f"{called(key)} has shape {tuple(mapped[key])}, hacm's is {tuple(expected[key])}"
                 for key in wrong[:limit]]
    return problems


def detect_source(keys: Iterable[str]) -> str | None:
    """release-hacm when the keys are the release's (its l1 / l2 or mask_token_t), 'mamp-or-mae' for the
    MAMP / MAE layout (the two have the same keys), None when they are neither."""
    keys = set(keys)
    if "joints_embed.proj.weight" not in keys:
        return None
    if keys & {"l1.weight", "mask_token_t"}:
        return "release-hacm"
    return "mamp-or-mae"
