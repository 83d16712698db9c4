"""One registry per research axis: methods (hacm.methods), masking criteria (hacm.model.criteria, their
score functions in hacm.model.criterion_scores) and evaluation protocols (hacm.protocols), as hacm.benchmarks
is for benchmarks. The model's checks, the commands and the tables read them; the workflow schema's lists
are held equal to them here; a new criterion or method works from its entry (and score function) alone."""

from __future__ import annotations

import pytest
import torch
import yaml

from hacm.config import ConfigError
from hacm.evaluate.schema import METRICS_SCHEMA
from hacm.methods import METHODS, RANDOM, Method, method_label
from hacm.model.config import SELECTION_FIELDS, ModelConfig, preset
from hacm.model.criteria import CRITERIA, MASKINGS, ROLES, Criterion, criteria_for
from hacm.model.criterion_scores import SCORES
from hacm.model.pretrainer import HACMPretrainer, to_sequences
from hacm.protocols import PLAIN_PROTOCOLS, PROTOCOLS
from hacm.release.kinds import KIND_METHODS, KINDS
from hacm.runs import Protocol
from hacm.pretrain.config import PretrainConfig
from tests.conftest import REPO

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
# 12 frames of t_patch 3: 4 time patches, 18 limb tokens each.
TINY = dict(frames=12, t_patch=3, dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1, decoder_heads=2)


def test_the_workflow_schema_lists_the_registries():
    definitions, properties = SCHEMA["definitions"], SCHEMA["properties"]
    assert definitions["pretrained_method"]["enum"] == list(METHODS)
    assert definitions["table_method"]["enum"] == [*METHODS, RANDOM]
    assert definitions["evaluated_protocol"]["enum"] == list(PLAIN_PROTOCOLS)
    assert sorted(definitions["published_kind"]["enum"]) == sorted(KINDS)
    assert list(properties["protocols"]["properties"]) == list(PROTOCOLS)
    loops = {protocol.loop for protocol in PROTOCOLS.values()}
    assert loops <= set(definitions["evaluate_sections"]["properties"])
    assert METRICS_SCHEMA["properties"]["protocol"]["enum"] == list(PROTOCOLS)


def test_every_criterion_has_one_score_function_and_known_roles():
    assert list(SCORES) == list(CRITERIA)
    assert all(set(criterion.roles) <= set(ROLES) and criterion.roles for criterion in CRITERIA.values())
    assert MASKINGS == ("cross", "single", *criteria_for("masking"))
    assert all(criterion.panel_method in (None, *METHODS) for criterion in CRITERIA.values())


def role_config(criterion: str, role: str, **fields) -> ModelConfig:
    if role in ("temporal", "spatial"):
        return ModelConfig(**TINY, masking="cross", **{f"{role}_criterion": criterion}, **fields)
    if role == "single":
        return ModelConfig(**TINY, masking="single", single_criterion=criterion, contrast_weight=0.0, **fields)
    return ModelConfig(**TINY, masking=criterion, contrast_weight=0.0, **fields)


ROLE_PAIRS = [(name, role) for name, criterion in CRITERIA.items() for role in criterion.roles]


@pytest.mark.parametrize(("criterion", "role"), ROLE_PAIRS, ids=[f"{c}-{r}" for c, r in ROLE_PAIRS])
def test_each_criterion_scores_its_groups_and_the_model_trains_with_it(criterion, role):
    torch.manual_seed(0)
    model = HACMPretrainer(role_config(criterion, role))
    x = torch.randn(2, 3, 12, 25, 2)
    sequences = to_sequences(x)
    groups = model.group_scores(sequences, model.encoder.embed(sequences))
    assert [group.criterion for group in groups if group.group in (role, "all")] == [criterion]
    for group in groups:
        assert group.scores.shape == (4, len(group.members)) and torch.isfinite(group.scores).all()
    loss = model(x, generator=torch.Generator().manual_seed(0)).loss
    assert torch.isfinite(loss)


@pytest.mark.parametrize("role", ["temporal", "spatial", "single"])
def test_a_criterion_outside_its_roles_is_refused_in_one_line(role):
    for name in set(CRITERIA) - set(criteria_for(role)):
        with pytest.raises(ConfigError, match=f"model.{role}_criterion: must be one of"):
            ModelConfig(**{f"{role}_criterion": name})


def test_a_new_criterion_needs_only_its_entry_and_its_score_function(monkeypatch):
    """The model's checks, its masking and the mask figure's panel fields read the registry."""
    monkeypatch.setitem(CRITERIA, "spread", Criterion("spread", ("spatial", "single"), "joint spread"))
    monkeypatch.setitem(SCORES, "spread", lambda model, sequences, tokens, patch_ids:
                        tokens.euclidean[:, patch_ids].float().norm(dim=-1))
    config = ModelConfig(**TINY, spatial_criterion="spread")
    torch.manual_seed(0)
    model = HACMPretrainer(config)
    x = torch.randn(2, 3, 12, 25, 1)
    assert [group.criterion for group in model.group_scores(to_sequences(x), model.encoder.embed(to_sequences(x)))] \
        == ["attention", "spread"]
    assert torch.isfinite(model(x, generator=torch.Generator().manual_seed(0)).loss)
    assert ModelConfig(**TINY, **CRITERIA["spread"].panel_fields(), contrast_weight=0.0).masking_groups == \
        (("all", "spread"),)


def test_a_criterion_that_needs_the_trunk_is_refused_on_all_joint_tokens():
    with pytest.raises(ConfigError, match="model.token_joints: the hierarchy criterion needs token_joints=limbs"):
        ModelConfig(token_joints="all", masking="single", single_criterion="hierarchy", contrast_weight=0.0)


def test_every_method_is_a_valid_preset_of_known_criteria():
    for key, method in METHODS.items():
        config = preset(key)
        assert all(criterion in CRITERIA for _, criterion in config.masking_groups), key
        assert KIND_METHODS[method.published_kind] == key and method_label(key) == method.label
    assert method_label(RANDOM) == "random encoder (no pretraining)"


def test_a_new_method_needs_only_its_entry(monkeypatch):
    """A pretraining config names it and gets its preset (the workflow schema's lists are held equal above)."""
    mae75 = Method("mae75", "MAE (r 0.75)", "MAE's objective at mask ratio 0.75", "maoyunyao/MAMP", "mae",
                   {**METHODS["mae"].preset, "mask_ratio": 0.75})
    monkeypatch.setitem(METHODS, "mae75", mae75)
    config = PretrainConfig.from_dict({"method": "mae75", "model": {"frames": 12, "t_patch": 3}})
    assert config.model.mask_ratio == 0.75 and config.model.masking == "random" and method_label("mae75") == "MAE (r 0.75)"
    with pytest.raises(ConfigError, match="method: must be one of hacm, mae, mamp, mae75"):
        PretrainConfig.from_dict({"method": "mea"})


def test_score_scalings_name_their_divisor():
    assert ModelConfig().selection == {"scaling": "max", "divisor": 0.9, "keep_high": True}
    assert preset("mamp").selection == {"scaling": "max", "divisor": 0.8, "keep_high": False}
    # what the mask figure copies from MAMP's preset for its motion panel decides the selection whole
    copied = ModelConfig(**{key: getattr(preset("mamp"), key) for key in SELECTION_FIELDS})
    assert copied.selection == preset("mamp").selection
    minmax = ModelConfig(score_scaling="minmax", score_temperature=0.25)
    assert minmax.selection == {"scaling": "minmax", "divisor": 0.25, "keep_high": True}
    with pytest.raises(ConfigError, match="model.score_temperature: is the temperature of score_scaling minmax: set"):
        ModelConfig(score_scaling="minmax")
    with pytest.raises(ConfigError, match="model.score_temperature: is the temperature of score_scaling minmax only; "
                                          "under max scaling .* set score_max_fraction instead"):
        ModelConfig(score_temperature=0.75)


@pytest.mark.parametrize("kind", list(PROTOCOLS))
def test_every_protocol_names_its_run_folder_and_reads_its_loop(kind):
    protocol = PROTOCOLS[kind]
    values = {"fraction": 0.1, "draw": 2, "source": "ntu60-xsub"}
    folder = Protocol(kind, **{name: values[name] for name in protocol.parameters}).folder
    assert Protocol.parse(folder).kind == kind
    assert protocol.sections == ("data", protocol.loop, "monitor") and protocol.loop in ("linear", "finetune")
