"""hacm.release.keymap: the one key map from the authors' state dicts to hacm's, against the key names and
shapes of their models at the paper size (tests/data/release_keys.json, no weights), and against the live
models when checkouts are given (HACM_RELEASE_CHECKOUT, HACM_MAMP_CHECKOUT)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hacm.model.pretrainer import HACMPretrainer
from hacm.release.checkout import MAMP_MODEL_ARGS, RELEASE_MODEL_ARGS
from hacm.release.keymap import (
    KeyMapError,
    coverage_problems,
    detect_source,
    encoder_part,
    hacm_key,
    hacm_only_keys,
    map_keys,
    map_state,
    source_key,
)
from hacm.release.pairs import hacm_config

FIXTURE = Path(__file__).parent / "data" / "release_keys.json"
KEYS = json.loads(FIXTURE.read_text())
RELEASE_CHECKOUT = os.environ.get("HACM_RELEASE_CHECKOUT")
MAMP_CHECKOUT = os.environ.get("HACM_MAMP_CHECKOUT")
# The release's keys its forward never reads (fidelity review 2, §1).
RELEASE_DROPPED = {"mask_token", "mask_token_s", "decoder_embed_s.weight", "decoder_embed_s.bias",
                   "decoder_embed_t.weight", "decoder_embed_t.bias", "decoder_fc.weight", "decoder_fc.bias",
                   "decoder_fc_s.weight", "decoder_fc_s.bias", "decoder_fc_t.weight", "decoder_fc_t.bias"}
MODEL_ARGS = {"release-hacm": RELEASE_MODEL_ARGS, "mamp": MAMP_MODEL_ARGS, "mae": MAMP_MODEL_ARGS}
METHODS = {"release-hacm": "hacm", "mamp": "mamp", "mae": "mae"}


def hacm_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """hacm's HACMPretrainer key -> shape at the fixture's (paper) size."""
    model = HACMPretrainer(hacm_config(MODEL_ARGS[kind], METHODS[kind]))
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["release-hacm", "mamp", "mae"])
def test_the_authors_keys_fill_every_hacm_key_with_its_shape(kind):
    shapes = {key: tuple(shape) for key, shape in KEYS[kind].items()}
    mapped, keys = map_state(shapes, kind)
    assert keys.unknown == ()
    assert set(keys.dropped) == (RELEASE_DROPPED if kind == "release-hacm" else set())
    assert len(set(keys.renamed.values())) == len(keys.renamed)  # one to one
    expected = hacm_shapes(kind)
    skipped = hacm_only_keys(kind, hyperbolic=kind == "release-hacm")
    assert coverage_problems(mapped, expected, skipped=skipped, source=kind) == []
    assert set(expected) - set(mapped) == set(skipped)


@pytest.mark.parametrize("kind, theirs, ours", [
    ("release-hacm", "joints_embed.proj.weight", "encoder.patch_embed.weight"),
    ("release-hacm", "joints_embed.proj.bias", "encoder.patch_embed.bias"),
    ("release-hacm", "pos_embed", "encoder.joint_embed"),
    ("release-hacm", "temp_embed", "encoder.time_embed"),
    ("release-hacm", "blocks.0.norm1.weight", "encoder.transformer.blocks.0.norm1.weight"),
    ("release-hacm", "blocks.7.attn.qkv.bias", "encoder.transformer.blocks.7.attn.qkv.bias"),
    ("release-hacm", "blocks.3.attn.proj.weight", "encoder.transformer.blocks.3.attn.proj.weight"),
    ("release-hacm", "blocks.2.norm2.bias", "encoder.transformer.blocks.2.norm2.bias"),
    ("release-hacm", "blocks.3.mlp.fc1.bias", "encoder.transformer.blocks.3.mlp.0.bias"),
    ("release-hacm", "blocks.0.mlp.fc2.weight", "encoder.transformer.blocks.0.mlp.2.weight"),
    ("release-hacm", "norm.weight", "encoder.transformer.norm.weight"),
    ("release-hacm", "l1.weight", "w_q"),
    ("release-hacm", "l1.bias", "b_q"),
    ("release-hacm", "l2.weight", "w_k"),
    ("release-hacm", "l2.bias", "b_k"),
    ("release-hacm", "mask_token_t", "mask_token"),
    ("release-hacm", "decoder_embed.weight", "decoder_embed.weight"),
    ("release-hacm", "decoder_pos_embed", "decoder_joint_embed"),
    ("release-hacm", "decoder_temp_embed", "decoder_time_embed"),
    ("release-hacm", "decoder_blocks.2.attn.qkv.weight", "decoder.blocks.2.attn.qkv.weight"),
    ("release-hacm", "decoder_blocks.1.mlp.fc2.bias", "decoder.blocks.1.mlp.2.bias"),
    ("release-hacm", "decoder_norm.bias", "decoder.norm.bias"),
    ("release-hacm", "decoder_pred.weight", "head.weight"),
    ("release-hacm", "mask_token", None),  # the release's decoder uses mask_token_t
    ("release-hacm", "mask_token_s", None),
    ("release-hacm", "decoder_fc_t.weight", None),
    ("release-hacm", "head.fc.weight", None),  # an evaluation model's classifier
    ("mamp", "mask_token", "mask_token"),
    ("mae", "decoder_pred.bias", "head.bias"),
    ("mamp", "head.fc.bias", None),
])
def test_the_review_s_key_map(kind, theirs, ours):
    assert hacm_key(theirs, kind) == ours
    if ours is not None:
        assert source_key(ours, kind) == theirs


@pytest.mark.parametrize("kind", ["release-hacm", "mamp", "mae"])
def test_every_mapped_key_maps_back(kind):
    for key in KEYS[kind]:
        target = hacm_key(key, kind)
        assert target is None or source_key(target, kind) == key


def test_keys_of_one_source_are_not_another_s():
    with pytest.raises(KeyMapError, match="does not know the mamp key 'l1.weight'"):
        hacm_key("l1.weight", "mamp")
    with pytest.raises(KeyMapError, match="unknown source"):
        hacm_key("pos_embed", "moco")
    assert map_keys(["pos_embed", "l1.weight", "nonsense"], "mae").unknown == ("l1.weight", "nonsense")


def test_shape_and_coverage_problems_name_the_authors_keys():
    shapes = {key: tuple(shape) for key, shape in KEYS["mamp"].items()}
    del shapes["blocks.3.attn.qkv.bias"]
    shapes["pos_embed"] = (1, 1, 18, 256)
    mapped, _ = map_state(shapes, "mamp")
    problems = coverage_problems(mapped, hacm_shapes("mamp"), skipped=hacm_only_keys("mamp", hyperbolic=False),
                                 source="mamp")
    assert problems[0] == "missing blocks.3.attn.qkv.bias (hacm encoder.transformer.blocks.3.attn.qkv.bias)"
    assert problems[1] == "pos_embed (hacm encoder.joint_embed) has shape (1, 1, 18, 256), hacm's is (1, 1, 25, 256)"
    encoder = {key: shape for key, shape in encoder_part(mapped).items()}
    assert "joint_embed" in encoder and not any(key.startswith("decoder") for key in encoder)


def test_the_source_is_read_from_the_keys():
    assert detect_source(KEYS["release-hacm"]) == "release-hacm"
    assert detect_source(KEYS["mamp"]) == detect_source(KEYS["mae"]) == "mamp-or-mae"
    assert detect_source(["encoder.patch_embed.weight"]) is None


def _live_shapes(model) -> dict[str, list[int]]:
    return {key: list(value.shape) for key, value in model.state_dict().items()}


@pytest.mark.skipif(not RELEASE_CHECKOUT, reason="set HACM_RELEASE_CHECKOUT to a git clone of YinxPeng/HA-CM-main to "
                    "check the fixture against the release's own model")
def test_the_fixture_is_the_release_s_model():
    from hacm.release.checkout import release_model

    assert _live_shapes(release_model(Path(RELEASE_CHECKOUT))) == KEYS["release-hacm"], (
        f"{FIXTURE} is out of date: rewrite its release-hacm entry from hacm.release.checkout.release_model")


@pytest.mark.skipif(not MAMP_CHECKOUT, reason="set HACM_MAMP_CHECKOUT to a checkout of maoyunyao/MAMP to check the "
                    "fixture against MAMP's own models")
@pytest.mark.parametrize("kind", ["mamp", "mae"])
def test_the_fixture_is_mamp_s_models(kind):
    from hacm.release.checkout import mamp_model

    assert _live_shapes(mamp_model(Path(MAMP_CHECKOUT), kind)) == KEYS[kind], (
        f"{FIXTURE} is out of date: rewrite its {kind} entry from hacm.release.checkout.mamp_model")
