"""Why a condition does not hold, in the marketer's words: the clause that fails and the
customer's values it read, not the whole rule.

A rule is read as the conjunction of its top-level ``and`` clauses (an ``or``, a
``not`` or a comparison is one clause). When the rule is false, the first false clause
is quoted; when it is unknown, the first unknown one. Each clause carries the values it
compares (fields, function calls, arithmetic), rendered from the tree, so the text is
the rule's own spelling without the parts that hold.

>>> from nba.rules import MappingScope, RuleSchema, ValueType, compile_rule
>>> schema = RuleSchema({"cart_size": ValueType.NUMBER, "cart_age_hours": ValueType.NUMBER})
>>> rule = compile_rule("cart_size > 0 and cart_age_hours >= 1 and cart_age_hours <= 24", schema)
>>> rule.why_not(MappingScope({"cart_size": 2, "cart_age_hours": 30.2}))
'cart_age_hours <= 24 is false (cart_age_hours is 30.2)'
>>> rule.why_not(MappingScope({"cart_size": 2, "cart_age_hours": None}))
'cart_age_hours >= 1 is unknown (cart_age_hours is unknown)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nba.rules.closures import Evaluate, closure
from nba.rules.functions import Call
from nba.rules.tree import (
    Arithmetic,
    Compare,
    FieldRef,
    Literal,
    Logical,
    Membership,
    Negate,
    Node,
    Not,
)
from nba.rules.types import RuleScope

#: Longest list quoted among a clause's values (a browse history, seasonal months).
_LIST_ITEMS = 5


@dataclass(frozen=True, slots=True)
class Clause:
    """One top-level clause of a condition: its text, how to evaluate it, and the values
    it reads (label and evaluation), quoted when it fails."""

    text: str
    evaluate: Evaluate
    probes: tuple[tuple[str, Evaluate], ...]

    def explain(self, scope: RuleScope, verdict: str) -> str:
        if not self.probes:
            return f"{self.text} is {verdict}"
        values = ", ".join(f"{label} is {value_text(e(scope))}" for label, e in self.probes)
        return f"{self.text} is {verdict} ({values})"


def clauses_of(tree: Node) -> tuple[Clause, ...]:
    """The top-level ``and`` clauses of ``tree`` (``tree`` itself when it is not one)."""
    parts: list[Node] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Logical) and node.op == "and":
            stack.extend(reversed(node.operands))
        else:
            parts.append(node)
    # an ``or`` quoted before "is false" reads as one clause in its parentheses
    return tuple(
        Clause(f"({text(p)})" if isinstance(p, Logical) else text(p), closure(p), _probes(p))
        for p in parts
    )


def why_not(clauses: Sequence[Clause], scope: RuleScope) -> str | None:
    """The first false clause explained, else the first unknown one; ``None`` when
    every clause holds."""
    unknown: Clause | None = None
    for clause in clauses:
        value = clause.evaluate(scope)
        if value is True:
            continue
        if value is None:
            unknown = unknown or clause
            continue
        return clause.explain(scope, "false")
    return None if unknown is None else unknown.explain(scope, "unknown")


def _probes(node: Node) -> tuple[tuple[str, Evaluate], ...]:
    """The values a clause compares: the non-literal sides of its comparisons and
    memberships, the argument of ``known``, a field read as a condition; each once."""
    found: dict[str, Node] = {}

    def visit(n: Node) -> None:
        if isinstance(n, Logical):
            for operand in n.operands:
                visit(operand)
        elif isinstance(n, Not):
            visit(n.operand)
        elif isinstance(n, Compare):
            for side in (n.left, n.right):
                if not isinstance(side, Literal):
                    found.setdefault(text(side), side)
        elif isinstance(n, Membership):
            for side in (n.item, n.container):
                if not isinstance(side, Literal):
                    found.setdefault(text(side), side)
        elif isinstance(n, Call) and n.name == "known" and n.args:
            found.setdefault(text(n.args[0]), n.args[0])
        elif isinstance(n, FieldRef | Call):
            found.setdefault(text(n), n)

    visit(node)
    return tuple((label, closure(n)) for label, n in found.items())


def value_text(value: object) -> str:
    """A value as a marketer reads it: ``unknown``, ``30.2``, ``'lapsed'``, ``[4, 10]``."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return repr(value)
    if not isinstance(value, list | tuple):
        return str(value)
    items = [value_text(v) for v in value[:_LIST_ITEMS]]
    more = f", ... ({len(value)} in all)" if len(value) > _LIST_ITEMS else ""
    return f"[{', '.join(items)}{more}]"


def _number(value: float) -> str:
    """Three significant digits (a score of 0.29 against a bar of 0.3 stays 0.29), whole
    numbers as such, no exponent below a million.

    >>> [_number(v) for v in (30.0, 30.24, 0.2912, 1234.6, 5.04, -2.0)]
    ['30', '30.2', '0.291', '1235', '5.04', '-2']
    """
    if not math.isfinite(value):
        return str(value)
    number = float(value)
    if number.is_integer():
        return str(int(number))
    if abs(number) >= 100:
        return str(round(number))
    return f"{number:.3g}"


_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "compare": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}


def _level(node: Node) -> int:
    if isinstance(node, Logical):
        return _PRECEDENCE[node.op]
    if isinstance(node, Not):
        return _PRECEDENCE["not"]
    if isinstance(node, Compare | Membership):
        return _PRECEDENCE["compare"]
    if isinstance(node, Arithmetic):
        return _PRECEDENCE[node.op]
    return 9


def _wrapped(node: Node, above: int, *, strict: bool = False) -> str:
    """``node``'s text, in parentheses when its operator binds looser than ``above``
    (or as loose, when ``strict``: the right side of ``-``, ``/``, ``%``)."""
    inner = text(node)
    level = _level(node)
    return f"({inner})" if level < above or (strict and level == above) else inner


def text(node: Node) -> str:
    """The rule text of ``node`` (the rule's spelling, normalised spacing and quotes).

    >>> from nba.rules import RuleSchema, ValueType, compile_rule
    >>> schema = RuleSchema({"a": ValueType.NUMBER, "b": ValueType.NUMBER})
    >>> text(compile_rule("a>1 and (b < 2 or not a == 3)", schema)._tree)
    'a > 1 and (b < 2 or not a == 3)'
    """
    if isinstance(node, Literal):
        return _literal(node.value)
    if isinstance(node, FieldRef):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(text(a) for a in node.args)})"
    if isinstance(node, Negate):
        return f"-{_wrapped(node.operand, 9)}"
    if isinstance(node, Not):
        return f"not {_wrapped(node.operand, _PRECEDENCE['not'])}"
    if isinstance(node, Arithmetic):
        level = _PRECEDENCE[node.op]
        right = _wrapped(node.right, level, strict=node.op in "-/%")
        return f"{_wrapped(node.left, level)} {node.op} {right}"
    if isinstance(node, Compare):
        level = _PRECEDENCE["compare"] + 1
        return f"{_wrapped(node.left, level)} {node.op} {_wrapped(node.right, level)}"
    if isinstance(node, Membership):
        op = "not in" if node.negated else "in"
        level = _PRECEDENCE["compare"] + 1
        return f"{_wrapped(node.item, level)} {op} {_wrapped(node.container, level)}"
    if isinstance(node, Logical):
        level = _PRECEDENCE[node.op]
        return f" {node.op} ".join(_wrapped(o, level + 1) for o in node.operands)
    return "?"


def _literal(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list | tuple):
        return f"[{', '.join(_literal(v) for v in value)}]"
    return str(value)
