"""The JSON schema of metrics.json (without torch, so that the tables environment can check files)."""

from __future__ import annotations

METRICS_SCHEMA = {
    "type": "object",
    "required": ["protocol", "top1", "top5", "per_class_accuracy", "num_train", "num_test", "num_classes", "seed",
                 "encoder", "config", "git_commit", "seconds", "mode", "dataset"],
    "properties": {
        "protocol": {"enum": ["linear", "finetune", "semi", "transfer"]},
        "top1": {"type": "number", "minimum": 0, "maximum": 1},
        "top5": {"type": "number", "minimum": 0, "maximum": 1},
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
        "semi": {"type": "object", "required": ["fraction", "draw", "subset_seed", "subset_size", "subset_digest"]},
    },
}


def validate_metrics(document: dict) -> None:
    """Raise jsonschema.ValidationError when a metrics document does not match METRICS_SCHEMA."""
    import jsonschema

    jsonschema.validate(document, METRICS_SCHEMA)
