"""Configuration machinery every stage shares (torch-free): the error, YAML loading, `--set` overrides,
sections checked into frozen dataclasses (unknown keys named, numbers coerced, booleans strict), and
dataclass -> plain dict. Each stage keeps only its own dataclasses (model/, train/, eval/ config.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key."""


def require_mapping(data, section: str) -> dict:
    """A config section as a dict; anything else (a number, a list) is a one-line error naming it."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: must be a mapping of keys, got {type(data).__name__} {data!r}")
    return dict(data)


def section_from_dict(cls, data: dict | None, section: str):
    data = require_mapping(data, section)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{section}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    try:
        return cls(**coerce_numbers(cls, data, section))
    except TypeError as error:
        raise ConfigError(f"{section}: {error}") from None


_UNSET = object()


def require(condition: bool, key: str, message: str, *, got=_UNSET) -> None:
    """ConfigError `key: message (got value)` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{key}: {message}" + ("" if got is _UNSET else f" (got {got!r})"))


def require_rates(section: str, lr: float, min_lr: float) -> None:
    """A warm-up + cosine schedule's bounds: 0 <= min_lr <= lr, both finite. A min_lr above lr would make
    the "decay" climb towards it (a typo such as 1e-1 for 1e-4 trains at a growing rate, exit 0)."""
    require(math.isfinite(lr) and lr > 0, f"{section}.lr", "must be a positive finite number", got=lr)
    require(math.isfinite(min_lr) and min_lr >= 0, f"{section}.min_lr", "must be a non-negative finite number",
            got=min_lr)
    require(min_lr <= lr, f"{section}.min_lr", f"must not exceed {section}.lr ({lr!r}): the cosine decays from lr "
                                               f"to min_lr", got=min_lr)


def adam_betas(value, key: str) -> tuple[float, float]:
    """Two numbers in [0, 1), as a tuple; anything else is a one-line error naming the key."""
    numeric = isinstance(value, (list, tuple)) and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) for b in value)
    require(numeric and len(value) == 2 and all(0 <= b < 1 for b in value), key,
            f"must be two numbers in [0, 1), e.g. [0.9, 0.95]; got {value!r}")
    return tuple(value)


def coerce_numbers(cls, data: dict, section: str) -> dict:
    """Numbers written as text turned into numbers, anything else in a number's place a clear error;
    a boolean key takes only true or false.

    YAML 1.1 (PyYAML, Snakemake) reads `1e-3` as the string "1e-3"; the intended value is plain."""
    types = {f.name: str(f.type) for f in fields(cls)}
    result = dict(data)
    for key, value in data.items():
        kind = types.get(key, "")
        if kind == "bool" and not isinstance(value, bool):  # "false" is a true string: never guess
            raise ConfigError(f"{section}.{key}: expected true or false, got {value!r}")
        if kind.split(" |")[0] not in ("int", "float") or value is None:
            continue
        if isinstance(value, str):
            try:
                value = float(value) if kind.startswith("float") else int(value)
            except ValueError:
                raise ConfigError(f"{section}.{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{section}.{key}: expected a number, got {value!r}")
        result[key] = float(value) if kind.startswith("float") else value
    return result


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """`a.b=value` strings (values parsed as YAML) applied to a nested dict."""
    data = yaml.safe_load(yaml.safe_dump(data)) or {}
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"--set {override!r}: expected key=value")
        key, text = override.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {override!r}: not a YAML value ({str(error).splitlines()[0]})") from None
    return data


def load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def to_plain_dict(config) -> dict:
    """A config dataclass as nested dicts and lists (tuples become lists), as YAML and JSON write it."""
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    assert is_dataclass(config)
    return plain(asdict(config))


RUN_CONFIG = "run.yaml"  # a run folder's one config file: the resolved configuration


def write_run_config(out_dir: Path, resolved: dict, *, given: Path | None) -> None:
    """`out_dir/run.yaml`: the resolved configuration the run uses. Not rewritten when the run was started
    from that very file (the workflow's, which hacm.configure already wrote resolved)."""
    path = Path(out_dir) / RUN_CONFIG
    if given is not None and Path(given).resolve() == path.resolve():
        return
    path.write_text(yaml.safe_dump(resolved, sort_keys=False))
