"""Rule trees turned into nested closures, once per rule.

A decision evaluates every eligibility rule of the catalog; walking the tree
(``Node.evaluate``) pays a method dispatch and attribute look-ups per node. The
closures built here capture each node's operands and operator once, and give
the same value as ``tree.evaluate(scope)`` for every scope, unknowns and errors
included (``tests/test_nba_rules.py`` compares the two on random scopes). A node
kind unknown here keeps its own ``evaluate``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from nba.rules.functions import _FUNCTIONS, Call
from nba.rules.tree import (
    _ARITHMETIC,
    _ORDERING,
    Arithmetic,
    Compare,
    FieldRef,
    Literal,
    Logical,
    Membership,
    Negate,
    Node,
    Not,
    as_number,
)
from nba.rules.types import RuleScope, Value

Evaluate = Callable[[RuleScope], Value]

#: ``_ORDERING``'s operators as built-ins, for operands that are exactly int or float
_PLAIN_ORDERING: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NUMBERS = frozenset({int, float})
#: ``_ARITHMETIC``'s operators that are built-ins (the same operation, without a lambda)
_PLAIN_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


def closure(node: Node) -> Evaluate:
    """A function of the scope giving ``node.evaluate(scope)``."""
    builder = _BUILDERS.get(type(node))
    return node.evaluate if builder is None else builder(node)


def _literal(node: Node) -> Evaluate:
    assert isinstance(node, Literal)
    value = node.value
    if isinstance(value, list):
        items = list(value)
        return lambda scope: list(items)  # a fresh list, as the tree gives
    return lambda scope: value


def _field(node: Node) -> Evaluate:
    assert isinstance(node, FieldRef)
    name = node.name
    return lambda scope: scope.field(name)


def _negate(node: Node) -> Evaluate:
    assert isinstance(node, Negate)
    operand = closure(node.operand)

    def negate(scope: RuleScope) -> Value:
        value = operand(scope)
        return None if value is None else -as_number(value)

    return negate


def _not(node: Node) -> Evaluate:
    assert isinstance(node, Not)
    operand = closure(node.operand)

    def negation(scope: RuleScope) -> Value:
        value = operand(scope)
        return None if value is None else not value

    return negation


def _arithmetic(node: Node) -> Evaluate:
    assert isinstance(node, Arithmetic)
    left, right = closure(node.left), closure(node.right)
    operate = _PLAIN_ARITHMETIC.get(node.op) or _ARITHMETIC[node.op]
    isfinite = math.isfinite
    if isinstance(node.right, Literal) and type(node.right.value) in _NUMBERS:
        b = node.right.value  # ``cart_value * 0.3``: the number held, as_number's own

        def arithmetic_literal(scope: RuleScope) -> Value:
            a = left(scope)
            if a is None:
                return None
            result = operate(as_number(a), b)  # type: ignore[arg-type]
            return None if result is None or not isfinite(result) else result

        return arithmetic_literal

    def arithmetic(scope: RuleScope) -> Value:
        a = left(scope)
        if a is None:
            return None
        b = right(scope)
        if b is None:
            return None
        result = operate(as_number(a), as_number(b))
        return None if result is None or not isfinite(result) else result

    return arithmetic


def _field_literal(node: Compare) -> tuple[str, Value] | None:
    """``(field, literal)`` when ``node`` compares a field with a scalar literal (the
    common ``days_to_birthday <= 7``), else ``None``."""
    left, right = node.left, node.right
    if not (isinstance(left, FieldRef) and isinstance(right, Literal)):
        return None
    if right.value is None or isinstance(right.value, list):
        return None
    return left.name, right.value


def _compare(node: Node) -> Evaluate:
    assert isinstance(node, Compare)
    direct = _field_literal(node)
    if direct is not None:
        return _compare_field(node.op, *direct)
    left, right, op = closure(node.left), closure(node.right), node.op
    if op in ("==", "!="):
        equal = op == "=="

        def equality(scope: RuleScope) -> Value:
            a, b = left(scope), right(scope)
            if a is None or b is None:
                return None
            return (a == b) if equal else (a != b)

        return equality
    order = _ORDERING[op]
    plain = _PLAIN_ORDERING[op]

    def ordering(scope: RuleScope) -> Value:
        a, b = left(scope), right(scope)
        if a is None or b is None:
            return None
        if type(a) in _NUMBERS and type(b) in _NUMBERS:  # what as_number lets through as is
            return plain(a, b)  # type: ignore[arg-type]
        return order(as_number(a), as_number(b))

    return ordering


def _compare_field(op: str, name: str, b: Value) -> Evaluate:
    """``field op literal``: the field read straight from the scope, the literal held
    (what :func:`_compare` gives, without the two operand closures)."""
    if op in ("==", "!="):
        equal = op == "=="

        def field_equality(scope: RuleScope) -> Value:
            a = scope.field(name)
            if a is None:
                return None
            return (a == b) if equal else (a != b)

        return field_equality
    order, plain = _ORDERING[op], _PLAIN_ORDERING[op]
    plain_b = type(b) in _NUMBERS

    def field_ordering(scope: RuleScope) -> Value:
        a = scope.field(name)
        if a is None:
            return None
        if plain_b and type(a) in _NUMBERS:
            return plain(a, b)  # type: ignore[arg-type]
        return order(as_number(a), as_number(b))

    return field_ordering


def _membership(node: Node) -> Evaluate:
    assert isinstance(node, Membership)
    item, container, negated = closure(node.item), closure(node.container), node.negated
    if isinstance(node.container, Literal) and isinstance(node.container.value, list):
        items = list(node.container.value)  # only read: no fresh copy per evaluation

        def literal_membership(scope: RuleScope) -> Value:
            value = item(scope)
            if value is None:
                return None
            return (value not in items) if negated else (value in items)

        return literal_membership

    def membership(scope: RuleScope) -> Value:
        value, values = item(scope), container(scope)
        if value is None or not isinstance(values, list):
            return None
        return (value not in values) if negated else (value in values)

    return membership


def _logical(node: Node) -> Evaluate:
    assert isinstance(node, Logical)
    operands = tuple(closure(operand) for operand in node.operands)
    decisive = node.op == "or"  # the value that settles the result at once

    def logical(scope: RuleScope) -> Value:
        unknown = False
        for operand in operands:
            value = operand(scope)
            if value is None:
                unknown = True
            elif bool(value) is decisive:
                return decisive
        return None if unknown else not decisive

    return logical


def _call(node: Node) -> Evaluate:
    assert isinstance(node, Call)
    args = tuple(closure(arg) for arg in node.args)
    written = _written_out(node.name, args)
    if written is not None:
        return written
    function = _FUNCTIONS[node.name].call
    return lambda scope: function(scope, [arg(scope) for arg in args])


def _written_out(name: str, args: tuple[Evaluate, ...]) -> Evaluate | None:
    """``known``, ``len``, ``abs``, ``min`` and ``max`` of one or two arguments as one
    closure each: what :mod:`nba.rules.functions` does (every argument read, in order;
    unknown when one is; numbers checked in order), without the argument list and the
    wrapper's calls. ``None`` for the others (called as they are)."""
    if len(args) == 1:
        (only,) = args
        if name == "known":
            return lambda scope: only(scope) is not None

        if name == "len":

            def length(scope: RuleScope) -> Value:
                value = only(scope)
                return len(value) if isinstance(value, list | str) else None

            return length
        if name in ("abs", "min", "max"):
            apply = abs if name == "abs" else None

            def one_number(scope: RuleScope) -> Value:
                value = only(scope)
                if value is None:
                    return None
                number = as_number(value)
                return number if apply is None else apply(number)

            return one_number
    if len(args) == 2 and name in ("min", "max"):
        first, second = args
        pick = min if name == "min" else max

        def two_numbers(scope: RuleScope) -> Value:
            a, b = first(scope), second(scope)
            if a is None or b is None:
                return None
            return pick(as_number(a), as_number(b))

        return two_numbers
    return None


_BUILDERS: dict[type[Node], Callable[[Node], Evaluate]] = {
    Literal: _literal,
    FieldRef: _field,
    Negate: _negate,
    Not: _not,
    Arithmetic: _arithmetic,
    Compare: _compare,
    Membership: _membership,
    Logical: _logical,
    Call: _call,
}
