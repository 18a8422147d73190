"""Types of the rule language: values, static types, errors, the schema and the scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

#: A value a rule computes with. Lists hold numbers or text.
Value = float | int | str | bool | list[object] | None

#: Longest rule text accepted, deepest bracket nesting and deepest tree: parsing and
#: evaluation stay cheap and can never exhaust the interpreter's stack.
MAX_RULE_LENGTH = 4000
MAX_DEPTH = 32
MAX_TREE_DEPTH = 64


class ValueType(StrEnum):
    """The static type of an expression."""

    NUMBER = "number"
    TEXT = "text"
    BOOL = "bool"
    NUMBER_LIST = "list[number]"
    TEXT_LIST = "list[text]"
    EMPTY_LIST = "list"  # the literal ``[]``, compatible with any list

    @property
    def is_list(self) -> bool:
        return self in (ValueType.NUMBER_LIST, ValueType.TEXT_LIST, ValueType.EMPTY_LIST)

    @property
    def element(self) -> ValueType | None:
        """The type of a list's elements (``None`` for scalars and ``[]``)."""
        return {ValueType.NUMBER_LIST: ValueType.NUMBER, ValueType.TEXT_LIST: ValueType.TEXT}.get(
            self
        )


class RuleError(ValueError):
    """A rule that cannot be parsed or type-checked; ``position`` is a 0-based offset."""

    __module__ = "nba.rules"  # its public home: tracebacks say nba.rules.RuleError

    def __init__(self, message: str, position: int | None = None) -> None:
        self.reason = message
        self.position = position
        where = "" if position is None else f" at position {position}"
        super().__init__(f"{message}{where}")


@dataclass(frozen=True)
class RuleSchema:
    """What rules may refer to: field types, and for text fields with a closed set
    of values (``lifecycle_state``...), the values allowed, so that a typo in a
    literal is caught at load time too."""

    types: Mapping[str, ValueType]
    domains: Mapping[str, frozenset[str]] = field(default_factory=dict)


class RuleScope(Protocol):
    """Where a rule reads its values from at decision time."""

    def field(self, name: str) -> Value:
        """The value of field ``name`` (``None`` when unknown)."""
        ...

    def hours_since_sent(self, action_id: str) -> float | None:
        """Hours since ``action_id`` was last sent to this customer (``None``: never)."""
        ...

    def affinity(self, kind: str, key: str) -> float:
        """The customer's affinity to category or brand ``key`` (``kind`` is one of them)."""
        ...


@dataclass
class MappingScope:
    """A scope over a plain mapping: for tests, doctests and previews in tools.

    >>> MappingScope({"x": 1}).field("x")
    1
    """

    values: Mapping[str, Value]
    sent_hours_ago: Mapping[str, float] = field(default_factory=dict)
    affinities: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def field(self, name: str) -> Value:
        return self.values.get(name)

    def hours_since_sent(self, action_id: str) -> float | None:
        return self.sent_hours_ago.get(action_id)

    def affinity(self, kind: str, key: str) -> float:
        return self.affinities.get(kind, {}).get(key, 0.0)
