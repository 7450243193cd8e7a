"""AWS's API key file format (``ImportApiKeys``, ``format=csv``).

The AWS developer guide ("API Gateway API key file format"): a header row, column names not case
sensitive and in any order; ``Name`` and ``Key`` are required, ``Description``, ``Enabled`` and
``UsagePlanIds`` optional, other columns ignored. ``Key`` is 20 to 128 characters (Portway, as
AWS's runtime: letters and digits), ``Name`` at most 1024. ``UsagePlanIds`` lists plan ids
separated by commas, the field quoted with double or single quotes when there are several.
Defaults: an empty string, ``Enabled`` true. Importing a key value that exists updates that key.

A row that cannot be used becomes a warning (``"line N: ..."``); the other rows are imported.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.keys.records import InvalidRecord, check_value

__all__ = ["ImportRow", "KeyFile", "parse_key_file", "split_records"]

_MAX_NAME = 1024


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One usable row. ``plans`` is None when the file has no ``UsagePlanIds`` column."""

    line: int
    name: str
    value: str
    description: str = ""
    enabled: bool = True
    plans: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class KeyFile:
    rows: tuple[ImportRow, ...]
    warnings: tuple[str, ...]


def split_records(text: str) -> list[tuple[int, list[str]]]:
    """CSV records as (line number, fields). A field that starts with ``"`` or ``'`` is quoted
    up to the same quote (doubled inside for a literal one) and may hold commas and newlines.
    Blank lines are skipped."""
    records: list[tuple[int, list[str]]] = []
    fields: list[str] = []
    field: list[str] = []
    line = start_line = 1
    quote: str | None = None
    at_field_start = True
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if quote is not None:
            if char == quote:
                if i + 1 < n and text[i + 1] == quote:
                    field.append(quote)
                    i += 2
                    continue
                quote = None
            else:
                if char == "\n":
                    line += 1
                field.append(char)
            i += 1
            continue
        if at_field_start and char in ("'", '"'):
            quote = char
            at_field_start = False
        elif char == ",":
            fields.append("".join(field))
            field = []
            at_field_start = True
        elif char in ("\r", "\n"):
            if char == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            fields.append("".join(field))
            if any(part.strip() for part in fields):
                records.append((start_line, fields))
            fields, field = [], []
            at_field_start = True
            line += 1
            start_line = line
        else:
            field.append(char)
            at_field_start = False
        i += 1
    fields.append("".join(field))
    if any(part.strip() for part in fields):
        records.append((start_line, fields))
    return records


def _enabled(raw: str) -> bool | None:
    text = raw.strip().lower()
    if text == "":
        return True
    if text in ("true", "false"):
        return text == "true"
    return None


def parse_key_file(text: str) -> KeyFile:
    """Rows and warnings of a key file. A file without ``Name`` and ``Key`` columns is an error
    (InvalidRecord), not a warning: nothing in it can be imported."""
    records = split_records(text.removeprefix("\ufeff"))
    if not records:
        raise InvalidRecord("the API key file is empty: it needs a header row with Name and Key")
    _, header = records[0]
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        columns.setdefault(title.strip().lower(), index)
    missing = [name for name in ("name", "key") if name not in columns]
    if missing:
        raise InvalidRecord(
            "the API key file's header row must name the Name and Key columns"
            f" (missing: {', '.join(missing)})"
        )
    rows: list[ImportRow] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}

    def cell(fields: list[str], column: str) -> str:
        index = columns.get(column)
        return fields[index].strip() if index is not None and index < len(fields) else ""

    for line, fields in records[1:]:
        name, value = cell(fields, "name"), cell(fields, "key")
        enabled = _enabled(cell(fields, "enabled"))
        problem = None
        if not name or len(name) > _MAX_NAME:
            problem = f"Name is required and at most {_MAX_NAME} characters"
        elif enabled is None:
            problem = f"Enabled must be true or false, not {cell(fields, 'enabled')!r}"
        else:
            try:
                check_value(value)
            except InvalidRecord as exc:
                problem = f"Key: {exc}"
        if problem is None and value in seen:
            problem = f"the same Key is on line {seen[value]}"
        if problem is not None:
            warnings.append(f"line {line}: {problem}")
            continue
        seen[value] = line
        plans: tuple[str, ...] | None = None
        if "usageplanids" in columns:
            raw_plans = cell(fields, "usageplanids").strip("'\"")
            plans = tuple(dict.fromkeys(p.strip() for p in raw_plans.split(",") if p.strip()))
        rows.append(
            ImportRow(
                line=line,
                name=name,
                value=value,
                description=cell(fields, "description"),
                enabled=bool(enabled),
                plans=plans,
            )
        )
    return KeyFile(tuple(rows), tuple(warnings))
