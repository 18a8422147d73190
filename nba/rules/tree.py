"""The parsed tree: each node type-checks itself and evaluates itself (three-valued)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from nba.rules.types import RuleError, RuleSchema, RuleScope, Value, ValueType


class Node:
    """A node of the parsed tree: it type-checks itself and evaluates itself."""

    position: int

    def children(self) -> Sequence[Node]:
        return ()

    def check(self, env: Env) -> ValueType:
        raise NotImplementedError

    def evaluate(self, scope: RuleScope) -> Value:
        raise NotImplementedError


@dataclass
class Env:
    """What a type check reads (the schema) and collects (fields, referenced actions)."""

    schema: RuleSchema
    fields: set[str] = field(default_factory=set)
    sent_actions: set[str] = field(default_factory=set)


@dataclass(eq=False)
class Literal(Node):
    value: Value
    type: ValueType
    position: int

    def check(self, env: Env) -> ValueType:
        return self.type

    def evaluate(self, scope: RuleScope) -> Value:
        return list(self.value) if isinstance(self.value, list) else self.value


@dataclass(eq=False)
class FieldRef(Node):
    name: str
    position: int

    def check(self, env: Env) -> ValueType:
        kind = env.schema.types.get(self.name)
        if kind is None:
            message = f"unknown field {self.name!r}"
            if self.name.lower() in ("none", "null"):
                message += " (test for an unknown value with known(x))"
            else:
                close = difflib.get_close_matches(self.name, list(env.schema.types), n=1)
                if close:
                    message += f" (did you mean {close[0]!r}?)"
            raise RuleError(message, self.position)
        env.fields.add(self.name)
        return kind

    def evaluate(self, scope: RuleScope) -> Value:
        return scope.field(self.name)


@dataclass(eq=False)
class Unary(Node):
    """An operator on one operand of type :attr:`accepts`; an unknown operand stays unknown."""

    operand: Node
    position: int

    #: The operand's type, and the result's.
    accepts: ClassVar[ValueType]
    #: What the operator takes, for the type error ("'-' applies to a number").
    applies_to: ClassVar[str]

    def children(self) -> Sequence[Node]:
        return (self.operand,)

    def check(self, env: Env) -> ValueType:
        kind = self.operand.check(env)
        if kind != self.accepts:
            raise RuleError(f"{self.applies_to}, got {kind}", self.position)
        return self.accepts

    def evaluate(self, scope: RuleScope) -> Value:
        value = self.operand.evaluate(scope)
        return None if value is None else self.apply(value)

    def apply(self, value: Value) -> Value:
        """The operator on a known value."""
        raise NotImplementedError


class Negate(Unary):
    accepts = ValueType.NUMBER
    applies_to = "'-' applies to a number"

    def apply(self, value: Value) -> Value:
        return -as_number(value)


def as_number(value: Value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return value


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def _modulo(a: float, b: float) -> float | None:
    return None if b == 0 else a % b


_ARITHMETIC: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "%": _modulo,
}


@dataclass(eq=False)
class Arithmetic(Node):
    op: str
    left: Node
    right: Node
    position: int

    def children(self) -> Sequence[Node]:
        return (self.left, self.right)

    def check(self, env: Env) -> ValueType:
        left, right = self.left.check(env), self.right.check(env)
        if left != ValueType.NUMBER or right != ValueType.NUMBER:
            raise RuleError(f"'{self.op}' needs numbers, got {left} and {right}", self.position)
        return ValueType.NUMBER

    def evaluate(self, scope: RuleScope) -> Value:
        left = self.left.evaluate(scope)
        if left is None:
            return None
        right = self.right.evaluate(scope)
        if right is None:
            return None
        result = _ARITHMETIC[self.op](as_number(left), as_number(right))
        return None if result is None or not math.isfinite(result) else result


_ORDERING: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _check_domain(env: Env, node: Node, literal: Node) -> None:
    """Refuse a text literal that a closed-domain field can never take."""
    if not isinstance(node, FieldRef) or not isinstance(literal, Literal):
        return
    domain = env.schema.domains.get(node.name)
    if domain is None:
        return
    values = literal.value if isinstance(literal.value, list) else [literal.value]
    for value in values:
        if isinstance(value, str) and value not in domain:
            allowed = ", ".join(sorted(domain))
            # 'Gold' for 'gold': a case slip is always suggested, however short the word
            close = [v for v in sorted(domain) if v.lower() == value.lower()] or (
                difflib.get_close_matches(value, sorted(domain), n=1, cutoff=0.75)
            )
            meant = f"did you mean {close[0]!r}? " if close else ""
            raise RuleError(
                f"{value!r} is not a value of {node.name} ({meant}expected one of: {allowed})",
                literal.position,
            )


@dataclass(eq=False)
class Compare(Node):
    op: str
    left: Node
    right: Node
    position: int

    def children(self) -> Sequence[Node]:
        return (self.left, self.right)

    def check(self, env: Env) -> ValueType:
        left, right = self.left.check(env), self.right.check(env)
        if self.op in _ORDERING:
            if left != ValueType.NUMBER or right != ValueType.NUMBER:
                raise RuleError(
                    f"'{self.op}' compares numbers, got {left} and {right}", self.position
                )
        elif not _compatible(left, right):
            raise RuleError(f"'{self.op}' compares {left} with {right}", self.position)
        _check_domain(env, self.left, self.right)
        _check_domain(env, self.right, self.left)
        return ValueType.BOOL

    def evaluate(self, scope: RuleScope) -> Value:
        left = self.left.evaluate(scope)
        right = self.right.evaluate(scope)
        if left is None or right is None:
            return None
        if self.op == "==":
            return left == right
        if self.op == "!=":
            return left != right
        return _ORDERING[self.op](as_number(left), as_number(right))


def _compatible(left: ValueType, right: ValueType) -> bool:
    if left == right:
        return True
    return left.is_list and right.is_list and ValueType.EMPTY_LIST in (left, right)


@dataclass(eq=False)
class Membership(Node):
    negated: bool
    item: Node
    container: Node
    position: int

    def children(self) -> Sequence[Node]:
        return (self.item, self.container)

    def check(self, env: Env) -> ValueType:
        item, container = self.item.check(env), self.container.check(env)
        op = "not in" if self.negated else "in"
        if not container.is_list:
            raise RuleError(f"'{op}' needs a list on its right, got {container}", self.position)
        element = container.element
        if element is not None and item != element:
            raise RuleError(f"'{op}' looks for a {item} in a {container}", self.position)
        if item.is_list or item == ValueType.BOOL:
            raise RuleError(f"'{op}' looks for a number or text, got {item}", self.position)
        _check_domain(env, self.item, self.container)  # lifecycle_state in ['new', ...]
        _check_domain(env, self.container, self.item)  # 'sms' in consented_channels
        return ValueType.BOOL

    def evaluate(self, scope: RuleScope) -> Value:
        item = self.item.evaluate(scope)
        container = self.container.evaluate(scope)
        if item is None or not isinstance(container, list):
            return None
        return (item not in container) if self.negated else (item in container)


class Not(Unary):
    accepts = ValueType.BOOL
    applies_to = "'not' applies to a condition"

    def apply(self, value: Value) -> Value:
        return not value


@dataclass(eq=False)
class Logical(Node):
    op: str  # "and" or "or"
    operands: list[Node]
    position: int

    def children(self) -> Sequence[Node]:
        return self.operands

    def check(self, env: Env) -> ValueType:
        for operand in self.operands:
            kind = operand.check(env)
            if kind != ValueType.BOOL:
                raise RuleError(f"'{self.op}' combines conditions, got {kind}", operand.position)
        return ValueType.BOOL

    def evaluate(self, scope: RuleScope) -> Value:
        decisive = self.op == "or"  # the value that settles the result at once
        unknown = False
        for operand in self.operands:
            value = operand.evaluate(scope)
            if value is None:
                unknown = True
            elif bool(value) is decisive:
                return decisive
        return None if unknown else not decisive
