"""The JSON schema of metrics.json (without torch, so that the tables environment can check files)."""

from __future__ import annotations

from hacm.protocols import PROTOCOLS

_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
_EPOCH = {"type": "integer", "minimum": 1}
_REQUIRED_SINCE_THE_START = ["protocol", "top1", "top5", "per_class_accuracy", "num_train", "num_test", "num_classes",
                             "seed", "encoder", "config", "git_commit", "seconds", "mode", "dataset"]
# Files written before these were recorded cannot be tabulated beside the (best-epoch) published numbers.
BEST_EPOCH_KEYS = ["best_top1", "best_epoch", "last_epoch", "optimisation"]

METRICS_SCHEMA = {
    "type": "object",
    "required": _REQUIRED_SINCE_THE_START + BEST_EPOCH_KEYS,
    "properties": {
        "protocol": {"enum": list(PROTOCOLS)},
        "top1": _FRACTION,  # the last epoch's
        "top5": _FRACTION,
        "best_top1": _FRACTION,  # best over the epochs the test split was scored at (monitor.test_every, the last)
        "best_epoch": _EPOCH,
        "last_epoch": _EPOCH,
        "optimisation": {
            "type": "object",
            "required": ["global_batch", "lr_absolute", "lr_per_256", "min_lr_absolute", "steps_per_epoch"],
            "properties": {"global_batch": {"type": "integer", "minimum": 1},
                           "lr_absolute": {"type": "number", "exclusiveMinimum": 0},
                           "lr_per_256": {"type": "number", "exclusiveMinimum": 0},
                           "min_lr_absolute": {"type": ["number", "null"], "minimum": 0},
                           "steps_per_epoch": {"type": "integer", "minimum": 1}},
        },
        "per_class_accuracy": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
        "num_train": {"type": "integer", "minimum": 1},
        "num_test": {"type": "integer", "minimum": 1},
        "num_classes": {"type": "integer", "minimum": 2},
        "seed": {"type": "integer", "minimum": 0},
        "encoder": {
            "type": "object",
            "required": ["path", "sha256", "method"],
            "properties": {"path": {"type": ["string", "null"]}, "sha256": {"type": ["string", "null"]},
                           "method": {"type": "string"}},
        },
        "config": {"type": "object"},
        "git_commit": {"type": "string"},
        "seconds": {"type": "number", "minimum": 0},
        "mode": {"type": "string"},
        "dataset": {"type": "object"},
        "environment": {"type": "object", "required": ["host", "device", "torch"]},  # where it ran (since issue 25)
        "semi": {"type": "object", "required": ["fraction", "draw", "subset_seed", "subset_size", "subset_digest"]},
    },
}


def validate_metrics(document: dict, *, before_best_epoch: bool = False) -> None:
    """Raise jsonschema.ValidationError when a metrics document does not match METRICS_SCHEMA;
    `before_best_epoch` accepts files that lack BEST_EPOCH_KEYS (to tell such a file from a foreign one)."""
    import jsonschema

    schema = METRICS_SCHEMA
    if before_best_epoch:
        schema = {**METRICS_SCHEMA, "required": _REQUIRED_SINCE_THE_START}
    jsonschema.validate(document, schema)
