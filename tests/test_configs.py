"""Stage configs: numbers written as YAML 1.1 text are numbers, wrong types are named errors."""

from __future__ import annotations

import pytest

from hacm.eval.config import EvalConfig
from hacm.model.config import ConfigError
from hacm.train.config import PretrainConfig, apply_overrides


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
])
def test_a_wrong_type_is_an_error_that_names_the_key(document, key):
    parse = EvalConfig.from_dict if "linear" in document else PretrainConfig.from_dict
    with pytest.raises(ConfigError, match=key):
        parse(document)
