"""The data contract rendered as Markdown, so that the README cannot drift from the code."""

from __future__ import annotations

from collections.abc import Iterable

from features.contract import TABLES, Column

_KIND_LABELS = {
    "id": "text id",
    "text": "text",
    "timestamp": "timestamp (with zone, UTC)",
    "date": "date YYYY-MM-DD",
    "float": "number",
    "int": "integer",
    "bool": "true/false",
    "json": "JSON object",
    "choice": "one of",
    "timezone": "IANA time zone",
    "channel": "channel",
    "channels": "channels, `|`-separated",
    "event_type": "event type",
    "hours": "hour range `H-H`",
}


def _type_label(col: Column) -> str:
    label = _KIND_LABELS[col.kind]
    if col.choices:
        label += ": " + ", ".join(f"`{c}`" for c in col.choices)
    if col.minimum is not None:
        label += f", >= {col.minimum:g}"
    if col.maximum is not None:
        label += f", <= {col.maximum:g}"
    return label


def contract_markdown(tables: Iterable[str]) -> str:
    """Markdown tables for the named contract tables, in order."""
    blocks: list[str] = []
    for name in tables:
        schema = TABLES[name]
        lines = [
            f"#### `{name}`: {schema.description}",
            "",
            "| column | type | required | meaning |",
            "|---|---|---|---|",
        ]
        for col in schema.columns:
            need = "yes" if col.required and not col.nullable else "no"
            key = " (key)" if col.name == schema.key else ""
            lines.append(f"| `{col.name}`{key} | {_type_label(col)} | {need} | {col.description} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
