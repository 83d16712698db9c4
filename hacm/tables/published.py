"""The published numbers (config/published.yaml): loading and validation.

File layout::

    version: 1
    tables:
      linear:                      # a table of hacm.tables.layout.TABLE_COLUMNS
        title: Linear evaluation (top-1 %)
        not_found: >-              # optional: what was looked for and not found
          ...
        rows:
          - method: MAMP           # shown in the tables (unique per table with citation)
            citation: mao2023mamp  # citation key, shown beside the method
            values: {ntu60-xsub: 84.9, ...}   # percent, as published; a missing key = not reported
            note: ...              # optional, shown in the footnote
            source:
              authors: ...
              title: ...
              venue: ...           # e.g. "ICCV 2023", "arXiv preprint"
              year: 2023
              id: arXiv:2308.07092 # arXiv id or DOI
              table: ...           # the table / section the numbers were read from
              read_at: ...         # where they were read (URL, repository file and commit)
              provenance: primary  # primary: the authors' own paper / repository / project page;
                                   # secondary: a third-party compilation (not checked against the paper)

Checked against PUBLISHED_SCHEMA (hacm.tables.schemas); every error is a `PublishedError` with one line
naming the file and the offending entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hacm.cli import one_line
from hacm.tables import ReportError, read_document
from hacm.tables.layout import TABLE_COLUMNS
from hacm.tables.schemas import closed, first_error

SOURCE_FIELDS = ("authors", "title", "venue", "year", "id", "table", "read_at", "provenance")
PROVENANCES = ("primary", "secondary")
_WORDS = {"type": ["string", "integer"], "pattern": r"\S"}  # a text (a year may be written as a number)


def _table_schema(name: str) -> dict:
    values = {column: {"type": "number", "minimum": 0, "maximum": 100, "description": "published numbers are percent"}
              for column in TABLE_COLUMNS[name]}
    row = closed(["method", "citation", "values", "source"], {
        "method": _WORDS, "citation": _WORDS, "note": _WORDS,
        "values": {**closed([], values, unknown="column key"), "minProperties": 1},
        "source": closed(list(SOURCE_FIELDS), {field: {"enum": list(PROVENANCES)} if field == "provenance" else _WORDS
                                               for field in SOURCE_FIELDS}),
    })
    return closed(["title"], {"title": _WORDS, "not_found": _WORDS, "rows": {"type": ["array", "null"], "items": row}})


# The tables the file may hold (hacm.tables.layout.TABLE_COLUMNS) and the column keys each may use.
PUBLISHED_SCHEMA = closed(["version", "tables"], {
    "version": {"const": 1},
    "tables": {**closed([], {name: _table_schema(name) for name in TABLE_COLUMNS}, unknown="table"), "minProperties": 1},
})


class PublishedError(ReportError):
    """A published-numbers file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class PublishedRow:
    method: str
    citation: str
    values: dict[str, float]
    source: dict[str, str]
    note: str | None = None

    @property
    def provenance(self) -> str:
        return self.source["provenance"]

    def describe_source(self) -> str:
        """One line: who, what, where it was read."""
        s = self.source
        text = (f"{s['authors']}, \"{s['title']}\", {s['venue']} ({s['year']}), {s['id']}; "
                f"numbers from: {s['table']}; read at: {s['read_at']}; {s['provenance']} source")
        return text + (f". Note: {self.note}" if self.note else "")


@dataclass(frozen=True)
class PublishedTable:
    name: str
    title: str
    rows: tuple[PublishedRow, ...]
    not_found: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return TABLE_COLUMNS[self.name]


@dataclass(frozen=True)
class Published:
    path: Path
    tables: dict[str, PublishedTable] = field(default_factory=dict)

    def table(self, name: str) -> PublishedTable:
        if name not in self.tables:
            known = ", ".join(sorted(self.tables)) or "none"
            raise PublishedError(f"{self.path}: unknown published table {name!r} (the file has: {known})")
        return self.tables[name]


def _row(raw: dict, where: str) -> PublishedRow:
    for key, value in raw["values"].items():
        if not math.isfinite(value):  # .nan passes the schema's range
            raise PublishedError(f"{where}.values.{key}: must be a number (percent), got {value!r}")
    note = raw.get("note")
    return PublishedRow(method=one_line(raw["method"]), citation=one_line(raw["citation"]),
                        values={key: float(value) for key, value in raw["values"].items()},
                        source={name: one_line(raw["source"][name]) for name in SOURCE_FIELDS},
                        note=None if note is None else one_line(note))


def validate_published(document: object, path: Path | str = "published.yaml") -> Published:
    """The checked contents of a parsed published-numbers document."""
    path = Path(path)
    problem = first_error(document, PUBLISHED_SCHEMA, str(path))
    if problem:
        raise PublishedError(problem)
    tables = {}
    for name, raw in document["tables"].items():
        rows = tuple(_row(row, f"{path}: tables.{name}.rows[{i}]") for i, row in enumerate(raw.get("rows") or []))
        seen = set()
        for row in rows:
            if (row.method, row.citation) in seen:
                raise PublishedError(f"{path}: tables.{name}: row {row.method} [{row.citation}] appears twice")
            seen.add((row.method, row.citation))
        not_found = raw.get("not_found")
        tables[name] = PublishedTable(name=name, title=one_line(raw["title"]), rows=rows,
                                      not_found=None if not_found is None else one_line(not_found))
    return Published(path=path, tables=tables)


def load_published(path: Path | str) -> Published:
    """Read and validate a published-numbers YAML file."""
    document = read_document(path, yaml.safe_load, PublishedError, "published-numbers YAML", (yaml.YAMLError,))
    return validate_published(document, Path(path))


def format_published(value: float) -> str:
    """A published number as it was published: one decimal, or more where the source gave more."""
    one = f"{value:.1f}"
    return one if float(one) == value else f"{value:g}"
