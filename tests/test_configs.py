"""Stage configs: numbers written as YAML 1.1 text are numbers, wrong types are named errors."""

from __future__ import annotations

import pytest

from hacm.evaluate.config import EvalConfig
from hacm.config import ConfigError
from hacm.config import apply_overrides
from hacm.pretrain.config import PretrainConfig


def test_exponent_numbers_read_as_text_become_numbers():
    # PyYAML reads 1e-2 (no dot) as a string; so does `--set optim.lr=1e-2`.
    document = apply_overrides({}, ["optim.lr=1e-2", "optim.epochs=30", "model.curvature=2"])
    assert document["optim"]["lr"] == "1e-2"
    config = PretrainConfig.from_dict(document)
    assert config.optim.lr == 0.01 and config.optim.epochs == 30 and config.model.curvature == 2.0
    assert EvalConfig.from_dict({"finetune": {"lr": "5e-4"}}).finetune.lr == 5e-4


@pytest.mark.parametrize("document,key", [
    ({"optim": {"lr": "fast"}}, "optim.lr"),
    ({"optim": {"epochs": True}}, "optim.epochs"),
    ({"model": {"dim": "1.5"}}, "model.dim"),
    ({"linear": {"epochs": [3]}}, "linear.epochs"),
    # Reliability probe: `hyperbolic: "false"` trained the hyperbolic model and recorded 'false'.
    ({"model": {"hyperbolic": "false"}}, "model.hyperbolic: expected true or false"),
    ({"model": {"keep_high_scores": 0}}, "model.keep_high_scores"),
    ({"linear": {"augment": "no"}}, "linear.augment"),
    ({"seed": True}, "seed"),
    ({"data": 5}, "data: must be a mapping"),
    ({"model": [1]}, "model: must be a mapping"),
    ({"linear": 5}, "linear: must be a mapping"),
])
def test_a_wrong_type_is_an_error_that_names_the_key(document, key):
    parse = EvalConfig.from_dict if "linear" in document else PretrainConfig.from_dict
    with pytest.raises(ConfigError, match=key):
        parse(document)


def test_learning_rates_are_stated_at_lr_batch_and_scaled_linearly():
    config = PretrainConfig.from_dict({"data": {"batch_size": 128}, "optim": {"lr": 1e-3, "min_lr": 5e-4, "lr_batch": 64}})
    assert config.optim.scaled_lr(128) == pytest.approx((2e-3, 1e-3))
    assert config.learning_rates() == {"global_batch": 128, "lr_absolute": 2e-3, "lr_per_256": 4e-3,
                                       "min_lr_absolute": 1e-3}
    assert PretrainConfig.from_dict({}).optim.scaled_lr(256) == pytest.approx((1.5e-4, 0.0))  # per 256 by default
    with pytest.raises(ConfigError, match="optim.lr_batch"):
        PretrainConfig.from_dict({"optim": {"lr_batch": 0}})


@pytest.mark.parametrize("document,key", [
    # Reliability probe 2 (N30): min_lr 10 with lr 0.05 made the "decay" climb from 0.0057 to 1.19, exit 0.
    ({"optim": {"lr": 0.05, "min_lr": 10}}, "optim.min_lr: must not exceed optim.lr"),
    ({"finetune": {"lr": 3e-4, "min_lr": 1e-1}}, "finetune.min_lr: must not exceed finetune.lr"),
    ({"optim": {"min_lr": float("nan")}}, "optim.min_lr"),
    ({"optim": {"lr": float("inf")}}, "optim.lr"),
    ({"finetune": {"lr": float("nan")}}, "finetune.lr"),
    ({"linear": {"lr": -0.1}}, "linear.lr"),
    ({"finetune": {"warmup_epochs": 2.5}}, "finetune.warmup_epochs"),
])
def test_a_schedule_whose_bounds_are_wrong_is_refused_when_configured(document, key):
    parse = EvalConfig.from_dict if {"linear", "finetune"} & set(document) else PretrainConfig.from_dict
    with pytest.raises(ConfigError, match=key):
        parse(document)


def test_a_constant_rate_is_a_valid_schedule():
    assert PretrainConfig.from_dict({"optim": {"lr": 1e-3, "min_lr": 1e-3}}).optim.min_lr == 1e-3
    assert EvalConfig.from_dict({"finetune": {"lr": 1e-3, "min_lr": 1e-3}}).finetune.min_lr == 1e-3
