"""The functions rules may call, with their type checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nba.rules.tree import Env, Literal, Node, as_number
from nba.rules.types import RuleError, RuleScope, Value, ValueType


@dataclass(frozen=True)
class _Function:
    check: Callable[[Env, list[Node], list[ValueType], int], ValueType]
    call: Callable[[RuleScope, list[Value]], Value]


def _arity(name: str, types: list[ValueType], low: int, high: int | None, position: int) -> None:
    if len(types) < low or (high is not None and len(types) > high):
        expected = (
            str(low) if high == low else f"{low} or more" if high is None else f"{low}-{high}"
        )
        raise RuleError(f"{name}() takes {expected} argument(s), got {len(types)}", position)


def _check_len(env: Env, args: list[Node], types: list[ValueType], pos: int) -> ValueType:
    _arity("len", types, 1, 1, pos)
    if not (types[0].is_list or types[0] == ValueType.TEXT):
        raise RuleError(f"len() takes a list or text, got {types[0]}", pos)
    return ValueType.NUMBER


def _check_contains(env: Env, args: list[Node], types: list[ValueType], pos: int) -> ValueType:
    _arity("contains", types, 2, 2, pos)
    container, item = types
    if container == ValueType.TEXT and item == ValueType.TEXT:
        return ValueType.BOOL
    element = container.element
    if container.is_list and (element is None or element == item) and not item.is_list:
        return ValueType.BOOL
    raise RuleError(f"contains() looks for a {item} in a {container}", pos)


def _check_known(env: Env, args: list[Node], types: list[ValueType], pos: int) -> ValueType:
    _arity("known", types, 1, 1, pos)
    return ValueType.BOOL


def _numeric(name: str, low: int, high: int | None) -> Callable[..., ValueType]:
    def check(env: Env, args: list[Node], types: list[ValueType], pos: int) -> ValueType:
        _arity(name, types, low, high, pos)
        for kind in types:
            if kind != ValueType.NUMBER:
                raise RuleError(f"{name}() takes numbers, got {kind}", pos)
        return ValueType.NUMBER

    return check


def _check_affinity(name: str) -> Callable[..., ValueType]:
    def check(env: Env, args: list[Node], types: list[ValueType], pos: int) -> ValueType:
        _arity(name, types, 1, 1, pos)
        if types[0] != ValueType.TEXT:
            raise RuleError(f"{name}() takes a text, got {types[0]}", pos)
        return ValueType.NUMBER

    return check


def _check_sent(env: Env, args: list[Node], types: list[ValueType], pos: int) -> ValueType:
    _arity("hours_since_sent", types, 1, 1, pos)
    arg = args[0]
    if not (isinstance(arg, Literal) and isinstance(arg.value, str)):
        raise RuleError("hours_since_sent() takes an action id in quotes", pos)
    env.sent_actions.add(arg.value)
    return ValueType.NUMBER


def _none_if_unknown(
    call: Callable[[list[Value]], Value],
) -> Callable[[RuleScope, list[Value]], Value]:
    def wrapped(scope: RuleScope, args: list[Value]) -> Value:
        return None if any(a is None for a in args) else call(args)

    return wrapped


def _len(args: list[Value]) -> Value:
    value = args[0]
    return len(value) if isinstance(value, list | str) else None


def _contains(args: list[Value]) -> Value:
    container, item = args
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    return isinstance(container, list) and item in container


def _affinity(kind: str) -> Callable[[RuleScope, list[Value]], Value]:
    def call(scope: RuleScope, args: list[Value]) -> Value:
        key = args[0]
        return None if key is None else scope.affinity(kind, str(key))

    return call


def _sent(scope: RuleScope, args: list[Value]) -> Value:
    return scope.hours_since_sent(str(args[0]))


_FUNCTIONS: dict[str, _Function] = {
    "len": _Function(_check_len, _none_if_unknown(_len)),
    "contains": _Function(_check_contains, _none_if_unknown(_contains)),
    "known": _Function(_check_known, lambda scope, args: args[0] is not None),
    "min": _Function(_numeric("min", 1, None), _none_if_unknown(lambda a: min(map(as_number, a)))),
    "max": _Function(_numeric("max", 1, None), _none_if_unknown(lambda a: max(map(as_number, a)))),
    "abs": _Function(_numeric("abs", 1, 1), _none_if_unknown(lambda a: abs(as_number(a[0])))),
    "category_affinity": _Function(_check_affinity("category_affinity"), _affinity("category")),
    "brand_affinity": _Function(_check_affinity("brand_affinity"), _affinity("brand")),
    "hours_since_sent": _Function(_check_sent, _sent),
}

#: Names of the functions rules may call.
FUNCTIONS: frozenset[str] = frozenset(_FUNCTIONS)


@dataclass(eq=False)
class Call(Node):
    name: str
    args: list[Node]
    position: int

    def children(self) -> Sequence[Node]:
        return self.args

    def check(self, env: Env) -> ValueType:
        function = _FUNCTIONS.get(self.name)
        if function is None:
            raise RuleError(f"unknown function {self.name!r}", self.position)
        types = [arg.check(env) for arg in self.args]
        return function.check(env, self.args, types, self.position)

    def evaluate(self, scope: RuleScope) -> Value:
        return _FUNCTIONS[self.name].call(scope, [arg.evaluate(scope) for arg in self.args])
