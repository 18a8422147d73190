"""Eligibility rules: a small, safe expression language over profile fields.

Marketers write conditions such as ``cart_size > 0 and cart_age_hours <= 12``
in the action catalog. The text is tokenized and parsed by a recursive-descent
parser into a tree of a few node kinds; nothing is ever handed to Python's
``eval``, ``exec`` or ``compile``. The tree is type-checked against a
:class:`RuleSchema` when the rule is compiled, so an unknown field, an unknown
function or a type error (``lifecycle_state > 3``) is refused when the catalog
loads, with its position, never when a decision is made.

Grammar, lowest precedence first::

    expression := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum]
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/" | "%") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | STRING | "true" | "false" | NAME | NAME "(" [args] ")"
                | "(" expression ")" | "[" [literal ("," literal)*] "]"

Functions: ``len(x)``, ``contains(list_or_text, item)``, ``known(x)``,
``min(a, b, ...)``, ``max(a, b, ...)``, ``abs(x)``, ``category_affinity(name)``,
``brand_affinity(name)`` and ``hours_since_sent('action_id')``.

Unknown values (``None``: no birthday known, never purchased) follow
three-valued logic: a comparison with an unknown value is unknown, ``False and
unknown`` is false, ``True or unknown`` is true, and a rule whose result is
unknown does not hold, so the customer is *not eligible*. ``known(x)`` tests
for a value explicitly. Division by zero is unknown too.

>>> schema = RuleSchema({"cart_value": ValueType.NUMBER, "days_to_birthday": ValueType.NUMBER})
>>> rule = compile_rule("cart_value > 50 and days_to_birthday <= 7", schema)
>>> rule.holds(MappingScope({"cart_value": 80.0, "days_to_birthday": 3}))
True
>>> rule.holds(MappingScope({"cart_value": 80.0, "days_to_birthday": None}))
False
>>> compile_rule("cart_value > 'high'", schema)
Traceback (most recent call last):
...
nba.rules.RuleError: '>' compares numbers, got number and text at position 11
>>> compile_rule("__import__('os')", schema)
Traceback (most recent call last):
...
nba.rules.RuleError: unknown function '__import__' at position 0
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from nba.rules.closures import Evaluate, closure
from nba.rules.explain import Clause, clauses_of, why_not
from nba.rules.functions import FUNCTIONS
from nba.rules.parser import Parser
from nba.rules.tree import Env, Node, as_number
from nba.rules.types import (
    MAX_DEPTH,
    MAX_RULE_LENGTH,
    MAX_TREE_DEPTH,
    MappingScope,
    RuleError,
    RuleSchema,
    RuleScope,
    Value,
    ValueType,
)

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_RULE_LENGTH",
    "MAX_TREE_DEPTH",
    "MappingScope",
    "Rule",
    "RuleError",
    "RuleSchema",
    "RuleScope",
    "Value",
    "ValueType",
    "compile_rule",
    "field_type",
]


@dataclass(frozen=True, eq=False)
class Rule:
    """A compiled, type-checked expression.

    Attributes
    ----------
    source : str
        The text as written.
    result_type : ValueType
        What it evaluates to (``bool`` for conditions, ``number`` for values).
    fields : frozenset of str
        Fields it reads.
    sent_actions : frozenset of str
        Action ids it passes to ``hours_since_sent``, for the catalog to check.
    """

    source: str
    result_type: ValueType
    fields: frozenset[str]
    sent_actions: frozenset[str]
    _tree: Node = field(repr=False)
    #: ``_tree.evaluate`` as closures built once (:mod:`nba.rules.closures`)
    _evaluate: Evaluate = field(init=False, repr=False)
    _hash: int = field(init=False, repr=False)  # rules key the caches of rejection reasons

    def __post_init__(self) -> None:
        object.__setattr__(self, "_evaluate", closure(self._tree))
        object.__setattr__(self, "_hash", hash((self.source, self.result_type)))

    def __reduce__(self) -> tuple[object, ...]:  # closures do not pickle: rebuilt on load
        return (Rule, (self.source, self.result_type, self.fields, self.sent_actions, self._tree))

    def evaluate(self, scope: RuleScope) -> Value:
        """The raw value (``None`` when unknown)."""
        return self._evaluate(scope)

    @property
    def evaluator(self) -> Evaluate:
        """:meth:`evaluate` as a plain function, for callers that evaluate it often."""
        return self._evaluate

    def holds(self, scope: RuleScope) -> bool:
        """True only when the condition is known to be true."""
        return self._evaluate(scope) is True

    def number(self, scope: RuleScope) -> float | None:
        """The numeric value, ``None`` when unknown."""
        value = self._evaluate(scope)
        return None if value is None else float(as_number(value))

    @property
    def tree(self) -> Node:
        """The parsed tree, for analyses of the rule's shape (:mod:`nba.reserve` reads
        which comparisons time alone moves)."""
        return self._tree

    @functools.cached_property
    def clauses(self) -> tuple[Clause, ...]:
        """Its top-level ``and`` clauses (:mod:`nba.rules.explain`)."""
        return clauses_of(self._tree)

    def why_not(self, scope: RuleScope) -> str:
        """Why the condition does not hold for ``scope``: its first false clause (else
        its first unknown one) with the values that clause reads."""
        reason = why_not(self.clauses, scope)
        return f"{self.source} is not true" if reason is None else reason

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rule):
            return NotImplemented
        return (self.source, self.result_type) == (other.source, other.result_type)

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return self.source


def compile_rule(
    source: str, schema: RuleSchema, *, expect: ValueType | None = ValueType.BOOL
) -> Rule:
    """Parse and type-check ``source``; raise :class:`RuleError` when it is not a
    valid expression of type ``expect`` (any type when ``expect`` is ``None``).

    >>> schema = RuleSchema({"cart_value": ValueType.NUMBER})
    >>> compile_rule("max(cart_value * 0.3, 5)", schema, expect=ValueType.NUMBER).number(
    ...     MappingScope({"cart_value": 100}))
    30.0
    >>> compile_rule("cart_value", schema)
    Traceback (most recent call last):
    ...
    nba.rules.RuleError: expected a condition (bool), got number at position 0
    """
    if not isinstance(source, str):
        raise RuleError(f"a rule is text, got {type(source).__name__}")
    if len(source) > MAX_RULE_LENGTH:
        raise RuleError(f"rule is longer than {MAX_RULE_LENGTH} characters")
    tree = Parser(source).parse()
    _check_tree_depth(tree)
    env = Env(schema)
    kind = tree.check(env)
    if expect is not None and kind != expect:
        wanted = "a condition (bool)" if expect == ValueType.BOOL else f"a {expect}"
        raise RuleError(f"expected {wanted}, got {kind}", tree.position)
    return Rule(source, kind, frozenset(env.fields), frozenset(env.sent_actions), tree)


def _check_tree_depth(tree: Node) -> None:
    stack: list[tuple[Node, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise RuleError("rule is too long or nested too deeply", node.position)
        stack.extend((child, depth + 1) for child in node.children())


def field_type(kind: str, element: ValueType = ValueType.TEXT) -> ValueType:
    """Map a profile field type (``number``, ``text``, ``bool``, ``list``) to a ValueType."""
    if kind == "list":
        return ValueType.NUMBER_LIST if element == ValueType.NUMBER else ValueType.TEXT_LIST
    return ValueType(kind)
