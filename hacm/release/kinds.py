"""The three kinds of the authors' pretrained models hacm reads, and how a result names one (torch-free).

release-hacm  YinxPeng/HA-CM-main's model_hacm Transformer (18 limb tokens, Poincaré ball, l1 / l2)
mamp          maoyunyao/MAMP's model_mamp Transformer (25 joint tokens, motion-aware masking)
mae           maoyunyao/MAMP's model_mae Transformer (the same parameters, random masking)
"""

from __future__ import annotations

from hacm.methods import METHODS

# The method (hacm.methods) each kind's encoder is.
KIND_METHODS = {method.published_kind: key for key, method in METHODS.items()}
KINDS = tuple(KIND_METHODS)
PUBLISHED_SUFFIX = " (published weights)"
# A published encoder's rows live in results/<bench>/published.<name>/...: no '-' (that is an ablation's).
PUBLISHED_FOLDER_PREFIX = "published."


def published_method(kind: str) -> str:
    """What metrics.json's encoder.method says of a published encoder: 'mamp (published weights)'."""
    return KIND_METHODS[kind] + PUBLISHED_SUFFIX


def published_folder(name: str) -> str:
    """The run folder (<method> part) of the published encoder `name` of the workflow config."""
    return PUBLISHED_FOLDER_PREFIX + name


def published_name(folder: str) -> str | None:
    """The published encoder a run folder names, or None for any other folder."""
    return folder[len(PUBLISHED_FOLDER_PREFIX):] if folder.startswith(PUBLISHED_FOLDER_PREFIX) else None
