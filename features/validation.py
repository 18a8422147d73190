"""Reading and validating contract tables from CSV or Parquet.

Validation is all-or-nothing: a file is checked whole, every problem is
collected with its file, rows and field, and the file is refused if any is
found. Checks are vectorised (one pass per column, not per row), so that a file
of millions of events validates in seconds.

>>> import pandas as pd
>>> from features.contract import PRODUCTS
>>> bad = pd.DataFrame({"product_id": ["P1"], "name": ["Tee"], "category": ["tops"],
...     "price": [-3.0], "margin": [1.0], "stock": [2], "launch_date": ["2026-01-01"]})
>>> try:
...     validate_table(bad, PRODUCTS, source="products.csv")
... except DataContractError as err:
...     print(err.problems[0])
products.csv: row 1, field 'price': value -3.0 is below the minimum 0
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import (
    CONSENT_EVENTS,
    CUSTOMERS,
    EARLIEST_MOMENT,
    EVENTS,
    ID_MAX_LENGTH,
    LATEST_MOMENT,
    OFFERS,
    PRODUCTS,
    Column,
    TableSchema,
    consent_channel_problem,
    is_known_timezone,
)
from nba.channels import Channel, parse_channel
from nba.events import EventType

MAX_ROWS_SHOWN = 5
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Problem:
    """One kind of problem in one field of one file, with the rows where it occurs.

    ``rows`` are 1-based data rows (the header is not counted; in a CSV file,
    data row N is on line N + 1). ``rows`` is empty for file-level problems.
    """

    source: str
    field: str | None
    message: str
    rows: tuple[int, ...] = ()
    count: int = 0

    def __str__(self) -> str:
        parts: list[str] = []
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_SHOWN])
            more = self.count - min(len(self.rows), MAX_ROWS_SHOWN)
            label = "row" if self.count == 1 else "rows"
            parts.append(f"{label} {shown}" + (f" and {more} more" if more > 0 else ""))
        if self.field:
            parts.append(f"field '{self.field}'")
        where = ", ".join(parts)
        return (
            f"{self.source}: {where}: {self.message}" if where else f"{self.source}: {self.message}"
        )


class DataContractError(ValueError):
    """Raised when input data breaks the contract. Carries every problem found, and for
    one table, ``checked``: the table in contract types with its bad values as nulls (so
    that checks across tables can still report every problem at once)."""

    def __init__(self, problems: Sequence[Problem], checked: pd.DataFrame | None = None):
        self.problems: list[Problem] = list(problems)
        self.checked = checked
        n = sum(max(p.count, 1) for p in self.problems)
        lines = [f"{n} problem(s) in the input data; nothing was loaded:"]
        lines += [f"  - {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more kinds of problem")
        super().__init__("\n".join(lines))


@dataclass
class _Collector:
    source: str
    problems: list[Problem] = field(default_factory=list)

    def rows(self, col: str | None, mask: np.ndarray | pd.Series, message: str) -> None:
        """Record ``message`` for the rows where ``mask`` is true (positional)."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if positions.size:
            self.problems.append(
                Problem(
                    self.source,
                    col,
                    message,
                    tuple(int(p) + 1 for p in positions[:MAX_ROWS_SHOWN]),
                    int(positions.size),
                )
            )

    def by_value(self, col: str, mask: np.ndarray, values: pd.Series, template: str) -> None:
        """Like :meth:`rows`, one problem per distinct offending value."""
        if not mask.any():
            return
        bad = values[mask]
        for value in pd.unique(bad.astype(str))[:20]:
            self.rows(col, mask & (values.astype(str) == value).to_numpy(), template.format(value))

    def file(self, col: str | None, message: str) -> None:
        self.problems.append(Problem(self.source, col, message))


def _blank(series: pd.Series) -> np.ndarray:
    """Missing values: NaN/None, and empty or whitespace-only text."""
    missing = series.isna().to_numpy().copy()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = series.astype("string").str.strip()
        missing |= (text == "").fillna(True).to_numpy(dtype=bool)
    return missing


def _as_text(series: pd.Series, missing: np.ndarray) -> pd.Series:
    if pd.api.types.is_float_dtype(series):
        # ids read as floats from Parquet/CSV (e.g. 12.0) should be "12"
        whole = series.where(~missing).astype("Int64", errors="ignore")
        out = whole.astype("string")
    else:
        out = series.astype("string").str.strip()
    return out.astype(object).where(~missing, None)


def _check_column(col: Column, raw: pd.Series, out: _Collector) -> pd.Series:
    """Coerce one column to its contract type, recording problems."""
    missing = _blank(raw)
    if not col.nullable:
        out.rows(col.name, missing, "missing value (this field is required)")
    present = ~missing
    kind = col.kind

    if kind == "text":
        return _as_text(raw, missing)

    if kind == "id":
        text = _as_text(raw, missing)
        strings = text.astype("string")
        long = (strings.str.len() > ID_MAX_LENGTH).fillna(False).to_numpy(dtype=bool)
        control = strings.str.contains(r"[\x00-\x1f\x7f]").fillna(False).to_numpy(dtype=bool)
        out.rows(col.name, long, f"not an id: longer than {ID_MAX_LENGTH} characters")
        out.rows(
            col.name, control, "not an id: contains a control character (tab, newline, NUL...)"
        )
        return text

    if kind == "timestamp":
        return _timestamps(col, raw, missing, out)

    if kind == "date":
        parsed = pd.to_datetime(raw.where(present), errors="coerce", format="mixed")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        out.rows(col.name, present & parsed.isna().to_numpy(), "not a date (expected YYYY-MM-DD)")
        return parsed.dt.normalize().astype("datetime64[ns]")

    if kind in ("float", "int"):
        if pd.api.types.is_bool_dtype(raw):
            raw = raw.astype(float)
        values = pd.to_numeric(raw.where(present), errors="coerce")
        bad = present & values.isna().to_numpy()
        out.rows(col.name, bad, "not a number")
        ok = present & ~bad
        arr = values.to_numpy(dtype=float, na_value=np.nan)
        if kind == "int":
            out.rows(col.name, ok & (np.floor(arr) != arr), "not a whole number")
        if col.minimum is not None:
            low = ok & (arr < col.minimum)
            for v in np.unique(arr[low])[:10]:
                out.rows(
                    col.name, low & (arr == v), f"value {v} is below the minimum {col.minimum:g}"
                )
        if col.maximum is not None:
            high = ok & (arr > col.maximum)
            out.rows(col.name, high, f"value is above the maximum {col.maximum:g}")
        if kind == "int":
            return pd.Series(arr, index=raw.index).round().astype("Int64")
        return pd.Series(arr, index=raw.index, dtype="float64")

    if kind == "bool":
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype("boolean")
        text = raw.astype("string").str.strip().str.lower()
        is_true = text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)
        is_false = text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)
        out.by_value(
            col.name, present & ~is_true & ~is_false, raw, "not a boolean: {!r} (use true or false)"
        )
        result = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        result[is_true] = True
        result[is_false] = False
        return result

    if kind == "json":
        return _json_objects(col, raw, present, out)

    if kind == "choice":
        assert col.choices is not None
        text = raw.astype("string").str.strip().str.lower()
        bad = present & ~text.isin(col.choices).fillna(False).to_numpy(dtype=bool)
        out.by_value(
            col.name,
            bad,
            raw,
            "unknown value {!r} (expected one of: " + ", ".join(col.choices) + ")",
        )
        return text.astype(object).where(present, None)

    if kind == "timezone":
        text = raw.astype("string").str.strip()
        known = np.array([is_known_timezone(v) if isinstance(v, str) else False for v in text])
        out.by_value(col.name, present & ~known, raw, "unknown IANA time zone {!r}")
        return text.astype(object).where(present, None)

    if kind == "channel":
        return _enum_values(col, raw, present, out, _channel_or_none, "channel")

    if kind == "event_type":
        return _enum_values(col, raw, present, out, _event_type_or_none, "event type")

    if kind == "channels":
        return _channel_lists(col, raw, present, out)

    if kind == "hours":
        text = raw.astype("string").str.strip()
        parts = text.str.extract(r"^(\d{1,2})-(\d{1,2})$")
        start = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        end = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ok = (start >= 0) & (start <= 23) & (end >= 1) & (end <= 24)
        out.by_value(col.name, present & ~ok, raw, "not an hour range {!r} (expected e.g. 18-21)")
        return text.astype(object).where(present, None)

    raise AssertionError(f"unhandled column kind {kind}")


def _timestamps(col: Column, raw: pd.Series, missing: np.ndarray, out: _Collector) -> pd.Series:
    present = ~missing
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        converted = raw.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        _check_moments(col, converted, out)
        return converted
    if pd.api.types.is_datetime64_dtype(raw):
        out.rows(
            col.name,
            present,
            "timestamp without time zone (store it as UTC, e.g. 2026-03-01T18:05:00Z)",
        )
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    text = raw.astype("string").str.strip()
    aware = text.str.contains(_TZ_SUFFIX).fillna(False).to_numpy(dtype=bool)
    naive = present & ~aware
    # a naive value that is no timestamp at all is not one: "without time zone" would
    # send its author to add a zone to "notadate"
    naive_moment = pd.to_datetime(text.where(naive), errors="coerce", format="ISO8601")
    naive_invalid = naive & naive_moment.isna().to_numpy()
    out.rows(
        col.name,
        naive & ~naive_invalid,
        "timestamp without time zone (add Z or an offset, e.g. 2026-03-01T18:05:00Z)",
    )
    parsed = pd.to_datetime(
        text.where(present & aware), errors="coerce", utc=True, format="ISO8601"
    )
    out.rows(
        col.name,
        naive_invalid | (present & aware & parsed.isna().to_numpy()),
        "not a valid timestamp (expected ISO 8601 with its zone, e.g. 2026-03-01T18:05:00Z)",
    )
    parsed = parsed.astype("datetime64[ns, UTC]")
    _check_moments(col, parsed, out)
    return parsed


def _check_moments(col: Column, parsed: pd.Series, out: _Collector) -> None:
    """Timestamps outside the accepted moments are problems of their rows."""
    early = (parsed < pd.Timestamp(EARLIEST_MOMENT)).fillna(False).to_numpy(dtype=bool)
    late = (parsed >= pd.Timestamp(LATEST_MOMENT)).fillna(False).to_numpy(dtype=bool)
    span = f"{EARLIEST_MOMENT:%Y-%m-%d} .. {LATEST_MOMENT:%Y-%m-%d} (UTC)"
    out.rows(col.name, early, f"timestamp before {span}")
    out.rows(col.name, late, f"timestamp after {span}")


def _json_objects(col: Column, raw: pd.Series, present: np.ndarray, out: _Collector) -> pd.Series:
    bad = np.zeros(len(raw), dtype=bool)
    result: list[str | None] = [None] * len(raw)
    for pos in np.flatnonzero(present):
        value = raw.iat[int(pos)]
        if isinstance(value, dict):
            result[pos] = json.dumps(value, sort_keys=True)
            continue
        try:
            parsed = json.loads(str(value))
        except (TypeError, ValueError):
            bad[pos] = True
            continue
        if not isinstance(parsed, dict):
            bad[pos] = True
            continue
        result[pos] = json.dumps(parsed, sort_keys=True)
    out.rows(col.name, bad, "not a JSON object")
    return pd.Series(result, index=raw.index, dtype=object)


def _channel_or_none(value: str) -> str | None:
    try:
        return parse_channel(value).value
    except ValueError:
        return None


def _event_type_or_none(value: str) -> str | None:
    key = value.strip().lower().replace(" ", "_")
    try:
        return EventType(key).value
    except ValueError:
        return None


def _enum_values(col, raw, present, out, parse, what: str) -> pd.Series:
    text = raw.astype("string").str.strip()
    mapping = {v: parse(v) for v in pd.unique(text[present].dropna())}
    mapped = text.astype(object).map(lambda v: mapping.get(v) if isinstance(v, str) else None)
    bad = present & mapped.isna().to_numpy()
    accepted = ", ".join(c.value for c in (Channel if what == "channel" else EventType))
    out.by_value(col.name, bad, raw, f"unknown {what} {{!r}} (expected one of: {accepted})")
    return mapped.astype(object).where(mapped.notna(), None)


def _channel_lists(col: Column, raw: pd.Series, present: np.ndarray, out: _Collector) -> pd.Series:
    result: list[str | None] = [None] * len(raw)
    bad = np.zeros(len(raw), dtype=bool)
    for pos in np.flatnonzero(present):
        value = raw.iat[int(pos)]
        items = (
            list(value) if isinstance(value, list | tuple | np.ndarray) else str(value).split("|")
        )
        parsed = [_channel_or_none(str(i)) for i in items if str(i).strip()]
        if not parsed or any(p is None for p in parsed):
            bad[pos] = True
        else:
            result[pos] = "|".join(dict.fromkeys(p for p in parsed if p))
    out.rows(col.name, bad, "not a |-separated list of known channels (e.g. email|sms)")
    return pd.Series(result, index=raw.index, dtype=object)


def validate_table(frame: pd.DataFrame, schema: TableSchema, source: str) -> pd.DataFrame:
    """Check ``frame`` against ``schema`` and return it with contract types.

    Raises :class:`DataContractError` listing every problem; nothing is returned
    unless the whole table is valid.
    """
    out = _Collector(source)
    frame = frame.reset_index(drop=True)
    known = set(schema.names)
    for name in frame.columns:
        if name not in known:
            out.file(
                str(name),
                f"unknown column (the {schema.name} table has: {', '.join(schema.names)})",
            )
    columns: dict[str, pd.Series] = {}
    for col in schema.columns:
        if col.name not in frame.columns:
            if col.required and not col.nullable:
                out.file(col.name, "required column is missing")
            columns[col.name] = _check_column(
                col, pd.Series([None] * len(frame), dtype=object), _Collector(source)
            )
            continue
        columns[col.name] = _check_column(col, frame[col.name], out)
    clean = pd.DataFrame(columns, index=frame.index)
    _check_key(clean, schema, out)
    _check_table_rules(clean, schema, out)
    if out.problems:
        raise DataContractError(out.problems, checked=clean)
    return clean


def _check_key(clean: pd.DataFrame, schema: TableSchema, out: _Collector) -> None:
    key = clean[schema.key]
    dup = key.duplicated(keep="first").to_numpy() & key.notna().to_numpy()
    if dup.any():
        out.rows(schema.key, dup, f"duplicate {schema.key} (each must be unique)")


def _check_table_rules(clean: pd.DataFrame, schema: TableSchema, out: _Collector) -> None:
    if schema is PRODUCTS:
        over = (clean["margin"] > clean["price"]).fillna(False).to_numpy(dtype=bool)
        out.rows("margin", over, "margin is larger than the price")
    elif schema is OFFERS:
        backwards = (clean["valid_to"] < clean["valid_from"]).fillna(False).to_numpy(dtype=bool)
        out.rows("valid_to", backwards, "valid_to is before valid_from")
        pct = (clean["kind"] == "percent_discount") & (clean["value"] > 100)
        out.rows(
            "value", pct.fillna(False).to_numpy(dtype=bool), "a percent discount cannot exceed 100"
        )
        _check_offer_eligibility(clean["eligibility"], out)
    elif schema is EVENTS:
        _check_consent_event_channels(clean, out)
    elif schema is CUSTOMERS and "preferred_channel" in clean:
        pref = clean["preferred_channel"]
        inbound = pref.notna() & ~pref.isin([c.value for c in Channel if c.is_outbound])
        out.rows(
            "preferred_channel",
            inbound.to_numpy(dtype=bool),
            "not an outbound channel (the engine cannot reach customers there)",
        )


def _check_offer_eligibility(rules: pd.Series, out: _Collector) -> None:
    """Each offer's eligibility parses and type-checks in the decision core's rule
    language (the catalog's rules are checked the same way when it loads)."""
    from nba.context import RULE_SCHEMA
    from nba.rules import RuleError, ValueType, compile_rule

    written = rules.notna().to_numpy(dtype=bool)
    for text in pd.unique(rules[written].astype(str)):
        try:
            compile_rule(text, RULE_SCHEMA, expect=ValueType.BOOL)
        except RuleError as error:
            out.rows("eligibility", written & (rules == text).to_numpy(dtype=bool), str(error))


def _check_consent_event_channels(clean: pd.DataFrame, out: _Collector) -> None:
    """Consent events (unsubscribe, complaint, opt-in, SMS STOP) on a channel whose
    consent they cannot change (:func:`features.contract.consent_channel_problem`)."""
    kinds = clean["event_type"]
    consent = kinds.isin([e.value for e in CONSENT_EVENTS]).to_numpy(dtype=bool)
    if not consent.any():
        return
    pairs = pd.DataFrame({"t": kinds[consent], "c": clean["channel"][consent]}).dropna()
    for kind, channel in pairs.drop_duplicates().itertuples(index=False):
        problem = consent_channel_problem(EventType(kind), Channel(channel))
        if problem is not None:
            mask = consent & (kinds == kind).to_numpy() & (clean["channel"] == channel).to_numpy()
            out.rows("channel", mask, problem)


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file as raw columns (text for CSV)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    raise DataContractError(
        [Problem(str(path), None, "unsupported file type (use .csv or .parquet)")]
    )


def read_table(path: str | Path, schema: TableSchema, source: str | None = None) -> pd.DataFrame:
    """Read and validate one contract table from ``path`` (its problems named after
    ``source``, by default the file's name).

    A CSV file whose rows do not all split into the header's fields (an unquoted comma,
    a quote never closed) is refused naming each such row, together with every problem
    of its other rows (:func:`_read_csv_records`), not only the first line the parser
    stopped at."""
    path = Path(path)
    if not path.exists():
        raise DataContractError([Problem(str(path), None, "file not found")])
    try:
        raw = read_frame(path)
    except DataContractError:
        raise
    except pd.errors.ParserError as exc:
        if not path.name.lower().endswith((".csv", ".csv.gz")):
            raise DataContractError([Problem(str(path), None, f"cannot be read: {exc}")]) from exc
        return _validate_records(path, schema, source or path.name)
    except Exception as exc:  # unreadable file: name it, do not leak a traceback
        raise DataContractError([Problem(str(path), None, f"cannot be read: {exc}")]) from exc
    if path.name.lower().endswith((".csv", ".csv.gz")) and _line_breaks(raw, schema).any():
        # a quote never closed: the lines after it were read into one value
        return _validate_records(path, schema, source or path.name)
    return validate_table(raw, schema, source=source or path.name)


def _line_breaks(frame: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Rows with a line break in a column that cannot hold one (all but free text and
    JSON): in a CSV file, the trace of a quote never closed."""
    found = np.zeros(len(frame), dtype=bool)
    for col in schema.columns:
        if col.kind not in ("text", "json") and col.name in frame.columns:
            values = frame[col.name]
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                found |= values.astype("string").str.contains("\n", regex=False).fillna(False)
    return found


def _validate_records(path: Path, schema: TableSchema, source: str) -> pd.DataFrame:
    """The problems of a CSV file the fast parser refused: its malformed rows by number,
    and those :func:`validate_table` finds in the others (at their own row numbers);
    always raises :class:`DataContractError`, with ``checked`` one row per data row."""
    header, good, numbers, malformed = _read_csv_records(path)
    strict = [
        i
        for i, name in enumerate(header)
        if name in schema.names and schema.column(name).kind not in ("text", "json")
    ]
    kept = [i for i, row in enumerate(good) if not any("\n" in (row[j] or "") for j in strict)]
    for i in sorted(set(range(len(good))) - set(kept)):
        malformed.setdefault(_UNCLOSED_QUOTE, []).append(numbers[i])
    good, numbers = [good[i] for i in kept], [numbers[i] for i in kept]
    frame = pd.DataFrame(good, columns=header)
    problems: list[Problem] = []
    for message, rows in malformed.items():
        rows.sort()
        problems.append(Problem(source, None, message, tuple(rows[:MAX_ROWS_SHOWN]), len(rows)))
    try:
        checked: pd.DataFrame | None = validate_table(frame, schema, source=source)
    except DataContractError as error:
        checked = error.checked
        for p in error.problems:
            renumbered = tuple(numbers[r - 1] for r in p.rows)
            problems.append(Problem(p.source, p.field, p.message, renumbered, p.count))
    if checked is not None:  # the malformed rows as empty rows, so positions are row numbers
        checked.index = np.asarray(numbers, dtype=np.int64) - 1
        total = max([*numbers, *(r for bad in malformed.values() for r in bad), 0])
        checked = checked.reindex(range(total))
    raise DataContractError(problems, checked=checked)


_UNCLOSED_QUOTE = (
    "a quoted value opened in this row is not closed where it should be: the lines after "
    "it were read into it (a stray or unbalanced quote)"
)


def _read_csv_records(
    path: Path,
) -> tuple[list[str], list[list[str | None]], list[int], dict[str, list[int]]]:
    """``(header, rows, row numbers, malformed)`` of a CSV file read record by record:
    the rows that split into the header's fields (empty values as None), their data row
    numbers (from 1; blank lines are skipped and not counted, and a short row's missing
    values are empty, as pandas reads them), and the numbers of the other rows by what is
    wrong with them."""
    import csv
    import gzip

    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    malformed: dict[str, list[int]] = {}
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        records = csv.reader(handle)
        header = next(records, [])
        width = len(header)
        number = 0
        for record in records:
            if not record:
                continue
            number += 1
            if len(record) < width and not any("\n" in v for v in record):
                record += [""] * (width - len(record))  # missing values, as pandas reads them
            if len(record) == width:
                rows.append([v if v.strip() else None for v in record])
                numbers.append(number)
                continue
            if any("\n" in v for v in record):
                why = _UNCLOSED_QUOTE
            else:
                why = (
                    f"more values than the header's {width} columns (a comma inside a value "
                    "that is not quoted?); nothing of this row was read"
                )
            malformed.setdefault(why, []).append(number)
    return header, rows, numbers, malformed


def check_references(
    events: pd.DataFrame,
    customers: pd.DataFrame | None,
    products: pd.DataFrame | None,
    offers: pd.DataFrame | None,
    source: str = "events",
) -> list[Problem]:
    """Problems for events that name an unknown customer, product or offer."""
    out = _Collector(source)
    pairs: Iterable[tuple[str, pd.DataFrame | None, str]] = (
        ("customer_id", customers, "customer"),
        ("product_id", products, "product"),
        ("offer_id", offers, "offer"),
    )
    for col, table, what in pairs:
        if table is None:
            continue
        ids = events[col]
        unknown = (ids.notna() & ~ids.isin(table[col])).to_numpy(dtype=bool)
        if unknown.any():
            sample = ", ".join(repr(v) for v in pd.unique(ids[unknown])[:3])
            out.rows(col, unknown, f"unknown {what} (not in the {what}s table), e.g. {sample}")
    return out.problems


def find_table_file(directory: Path, name: str) -> Path | None:
    """The file holding table ``name`` in ``directory`` (Parquet preferred over CSV)."""
    for suffix in (".parquet", ".csv", ".csv.gz"):
        candidate = directory / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


__all__ = [
    "CUSTOMERS",
    "EVENTS",
    "OFFERS",
    "PRODUCTS",
    "DataContractError",
    "Problem",
    "check_references",
    "find_table_file",
    "is_known_timezone",
    "read_table",
    "validate_table",
]
