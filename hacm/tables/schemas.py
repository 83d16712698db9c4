"""Checking a document against a JSON Schema, with the first problem as one line naming its place.

The tables' inputs each have their schema beside their reader: the plan's in hacm.tables.plan,
config/published.yaml's in hacm.tables.published (metrics.json's in hacm.evaluate.schema). A schema checks
the structure (keys, types, ranges, names); what it cannot say (a key given twice, a file that must
exist, a table another document refers to) is checked by the reader. A closed object may name, under
"x-unknown", what its properties are ("table", "column key"), so that an unknown one is reported so.
"""

from __future__ import annotations

from hacm.cli import one_line

_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a non-empty text", "number": "a number",
               "integer": "an integer", "null": "empty"}


TEXT = {"type": "string", "pattern": r"\S"}  # a non-empty text


def closed(required: list[str], properties: dict, *, unknown: str = "key") -> dict:
    """An object schema with exactly these properties, `required` among them."""
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False,
            "x-unknown": unknown}


def first_error(document: object, schema: dict, where: str) -> str | None:
    """None when `document` matches `schema`, else one line: `where: <path>: <what is wrong>`."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(document))
    if not errors:
        return None
    # The shallowest problem, the first in the document's own order.
    error = min(errors, key=lambda e: (len(e.absolute_path), _positions(document, e.absolute_path)))
    path = _path(error.absolute_path)
    here = f"{where}: {path}" if path else where
    return one_line(f"{here}: {_what(error)}" if error.validator != "const" else f"{_parent(error, where)}{_what(error)}")


def _positions(document: object, parts) -> list[int]:
    """Where each step of a path lies in its container (list index, or key order of a mapping)."""
    positions, node = [], document
    for part in parts:
        if isinstance(node, dict):
            positions.append(list(node).index(part) if part in node else len(node))
        else:
            positions.append(part if isinstance(part, int) else 0)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return positions


def _path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _parent(error, where: str) -> str:
    parent = _path(list(error.absolute_path)[:-1])
    return f"{where}: {parent + ': ' if parent else ''}"


def _what(error) -> str:
    kind, value, instance, schema = error.validator, error.validator_value, error.instance, error.schema
    if kind == "required":
        return "missing " + ", ".join(repr(key) for key in value if key not in instance)
    if kind == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = sorted(str(key) for key in instance if key not in known)
        noun = schema.get("x-unknown", "key")
        listed = f" (known: {', '.join(schema['properties'])})" if known else ""
        return f"unknown {noun} {', '.join(repr(key) for key in extra)}{listed}"
    if kind == "type":
        types = [value] if isinstance(value, str) else value
        return f"must be {' or '.join(_TYPE_WORDS.get(t, t) for t in types)}, got {instance!r}"
    if kind == "enum":
        return f"must be one of {', '.join(map(str, value))}, got {instance!r}"
    if kind == "const":
        name = list(error.absolute_path)[-1] if error.absolute_path else "document"
        return f"{name!r} must be {value!r}"
    if kind in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        reason = f" ({schema['description']})" if "description" in schema else ""
        if low is None or high is None:  # one bound only
            return f"{instance!r} is {'below' if kind == 'minimum' else 'above'} {value:g}{reason}"
        return f"{instance!r} is outside {low:g}..{high:g}{reason}"
    if kind == "pattern":
        return f"must be {_TYPE_WORDS['string']}, got {instance!r}"
    if kind in ("minItems", "minProperties"):
        return "must not be empty"
    return error.message
