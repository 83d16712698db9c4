"""The published numbers (config/published.yaml): loading and validation.

File layout::

    version: 1
    tables:
      linear:                      # one of TABLE_COLUMNS
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

Every error is a `PublishedError` with one line naming the file and the offending entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hacm.cli import one_line
from hacm.tables import ReportError, read_document

MAIN_COLUMNS = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub")
SEMI_COLUMNS = ("ntu60-xsub-1", "ntu60-xsub-10", "ntu60-xview-1", "ntu60-xview-10")
TRANSFER_COLUMNS = ("ntu60-pku2", "ntu120-pku2")

# The tables the file may hold and the column keys each may use.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "linear": MAIN_COLUMNS,
    "finetune": MAIN_COLUMNS,
    "semi": SEMI_COLUMNS,
    "transfer": TRANSFER_COLUMNS,
    "ablations": MAIN_COLUMNS,
}

SOURCE_FIELDS = ("authors", "title", "venue", "year", "id", "table", "read_at", "provenance")
PROVENANCES = ("primary", "secondary")
ROW_FIELDS = {"method", "citation", "values", "source", "note"}
TABLE_FIELDS = {"title", "rows", "not_found"}


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


def _text(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise PublishedError(f"{where}: must be a non-empty text")
    return one_line(value)


def _value(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PublishedError(f"{where}: must be a number (percent), got {value!r}")
    if not 0 <= value <= 100:
        raise PublishedError(f"{where}: {value} is outside 0..100 (published numbers are percent)")
    return float(value)


def _row(raw: object, table: str, index: int, where: str) -> PublishedRow:
    here = f"{where}: tables.{table}.rows[{index}]"
    if not isinstance(raw, dict):
        raise PublishedError(f"{here}: must be a mapping with method, citation, values, source")
    unknown = sorted(set(raw) - ROW_FIELDS)
    if unknown:
        raise PublishedError(f"{here}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(ROW_FIELDS))})")
    for name in ("method", "citation", "values", "source"):
        if name not in raw:
            raise PublishedError(f"{here}: missing {name!r}")
    method = _text(raw["method"], f"{here}.method")
    citation = _text(raw["citation"], f"{here}.citation")
    here = f"{where}: tables.{table}.rows[{index}] ({method})"
    values_raw = raw["values"]
    if not isinstance(values_raw, dict) or not values_raw:
        raise PublishedError(f"{here}.values: must be a non-empty mapping of column key to percent")
    values = {}
    for key, value in values_raw.items():
        if key not in TABLE_COLUMNS[table]:
            raise PublishedError(f"{here}.values: unknown column key {key!r} for table {table!r} "
                                 f"(known: {', '.join(TABLE_COLUMNS[table])})")
        values[key] = _value(value, f"{here}.values.{key}")
    source_raw = raw["source"]
    if not isinstance(source_raw, dict):
        raise PublishedError(f"{here}.source: must be a mapping with {', '.join(SOURCE_FIELDS)}")
    missing = [name for name in SOURCE_FIELDS if name not in source_raw]
    if missing:
        raise PublishedError(f"{here}.source: missing {', '.join(missing)}")
    unknown = sorted(set(source_raw) - set(SOURCE_FIELDS))
    if unknown:
        raise PublishedError(f"{here}.source: unknown field(s) {', '.join(unknown)}")
    source = {name: _text(source_raw[name], f"{here}.source.{name}") for name in SOURCE_FIELDS}
    if source["provenance"] not in PROVENANCES:
        raise PublishedError(f"{here}.source.provenance: must be one of {', '.join(PROVENANCES)}")
    note = raw.get("note")
    note = None if note is None else _text(note, f"{here}.note")
    return PublishedRow(method=method, citation=citation, values=values, source=source, note=note)


def validate_published(document: object, path: Path | str = "published.yaml") -> Published:
    """The checked contents of a parsed published-numbers document."""
    path = Path(path)
    where = str(path)
    if not isinstance(document, dict):
        raise PublishedError(f"{where}: must be a mapping with 'version' and 'tables'")
    unknown = sorted(set(document) - {"version", "tables"})
    if unknown:
        raise PublishedError(f"{where}: unknown top-level key(s) {', '.join(unknown)}")
    if document.get("version") != 1:
        raise PublishedError(f"{where}: 'version' must be 1")
    tables_raw = document.get("tables")
    if not isinstance(tables_raw, dict) or not tables_raw:
        raise PublishedError(f"{where}: 'tables' must be a non-empty mapping")
    tables = {}
    for name, raw in tables_raw.items():
        if name not in TABLE_COLUMNS:
            raise PublishedError(f"{where}: unknown table {name!r} (known: {', '.join(TABLE_COLUMNS)})")
        here = f"{where}: tables.{name}"
        if not isinstance(raw, dict):
            raise PublishedError(f"{here}: must be a mapping with title and rows")
        extra = sorted(set(raw) - TABLE_FIELDS)
        if extra:
            raise PublishedError(f"{here}: unknown field(s) {', '.join(extra)}")
        if "title" not in raw:
            raise PublishedError(f"{here}: missing 'title'")
        title = _text(raw["title"], f"{here}.title")
        rows_raw = raw.get("rows", [])
        if rows_raw is None:
            rows_raw = []
        if not isinstance(rows_raw, list):
            raise PublishedError(f"{here}.rows: must be a list")
        rows = tuple(_row(row, name, index, where) for index, row in enumerate(rows_raw))
        seen = set()
        for row in rows:
            key = (row.method, row.citation)
            if key in seen:
                raise PublishedError(f"{here}: row {row.method} [{row.citation}] appears twice")
            seen.add(key)
        not_found = raw.get("not_found")
        not_found = None if not_found is None else _text(not_found, f"{here}.not_found")
        tables[name] = PublishedTable(name=name, title=title, rows=rows, not_found=not_found)
    return Published(path=path, tables=tables)


def load_published(path: Path | str) -> Published:
    """Read and validate a published-numbers YAML file."""
    document = read_document(path, yaml.safe_load, PublishedError, "published-numbers YAML", (yaml.YAMLError,))
    return validate_published(document, Path(path))


def format_published(value: float) -> str:
    """A published number as it was published: one decimal, or more where the source gave more."""
    one = f"{value:.1f}"
    return one if float(one) == value else f"{value:g}"
