"""Tokenizer and recursive-descent parser: rule text to a tree, nothing else."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

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
    as_number,
)
from nba.rules.types import MAX_DEPTH, RuleError, ValueType

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|%|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "True", "False"})

_HINTS = {
    "=": "use '==' to compare",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not'",
    ".": "attribute access is not allowed",
    ":": "only expressions are allowed",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    position: int


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN_RE.match(source, position)
        if match is None:
            char = source[position]
            hint = _HINTS.get(char)
            message = f"unexpected character {char!r}" + (f" ({hint})" if hint else "")
            raise RuleError(message, position)
        kind = match.lastgroup or ""
        if kind != "space":
            text = match.group()
            if kind == "name" and text in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, text, position))
        position = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


class Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            return self.advance()
        return None

    def expect(self, kind: str, text: str) -> Token:
        token = self.accept(kind, text)
        if token is None:
            raise RuleError(f"expected {text!r}, found {self._describe()}", self.current.position)
        return token

    def _describe(self) -> str:
        token = self.current
        return "end of rule" if token.kind == "end" else repr(token.text)

    def parse(self) -> Node:
        if self.current.kind == "end":
            raise RuleError("empty rule", 0)
        node = self.expression()
        if self.current.kind != "end":
            raise RuleError(f"unexpected {self._describe()}", self.current.position)
        return node

    def nested(self, parse: Callable[[], Node], position: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError("rule is nested too deeply", position)
        try:
            return parse()
        finally:
            self.depth -= 1

    def expression(self) -> Node:
        return self.nested(self.or_expr, self.current.position)

    def _logical(self, op: str, operand: Callable[[], Node]) -> Node:
        first = operand()
        operands = [first]
        while self.accept("keyword", op):
            operands.append(operand())
        return first if len(operands) == 1 else Logical(op, operands, first.position)

    def or_expr(self) -> Node:
        return self._logical("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._logical("and", self.not_expr)

    def not_expr(self) -> Node:
        token = self.accept("keyword", "not")
        if token is not None:
            return Not(self.nested(self.not_expr, token.position), token.position)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum()
        token = self.current
        if token.kind == "op" and token.text in ("==", "!=", "<", "<=", ">", ">="):
            self.advance()
            node: Node = Compare(token.text, left, self.sum(), token.position)
        elif token.kind == "keyword" and token.text == "in":
            self.advance()
            node = Membership(False, left, self.sum(), token.position)
        elif token.kind == "keyword" and token.text == "not":
            self.advance()
            self.expect("keyword", "in")
            node = Membership(True, left, self.sum(), token.position)
        else:
            return left
        following = self.current
        if following.kind == "op" and following.text in ("==", "!=", "<", "<=", ">", ">="):
            raise RuleError(
                "comparisons cannot be chained (write a < b and b < c)", following.position
            )
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.current.kind == "op" and self.current.text in ("+", "-"):
            token = self.advance()
            node = Arithmetic(token.text, node, self.product(), token.position)
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.current.kind == "op" and self.current.text in ("*", "/", "%"):
            token = self.advance()
            node = Arithmetic(token.text, node, self.unary(), token.position)
        return node

    def unary(self) -> Node:
        token = self.accept("op", "-")
        if token is not None:
            operand = self.nested(self.unary, token.position)
            if isinstance(operand, Literal) and operand.type == ValueType.NUMBER:
                return Literal(-as_number(operand.value), ValueType.NUMBER, token.position)
            return Negate(operand, token.position)
        return self.atom()

    def atom(self) -> Node:
        token = self.current
        if token.kind == "number":
            self.advance()
            return Literal(_parse_number(token), ValueType.NUMBER, token.position)
        if token.kind == "string":
            self.advance()
            return Literal(_unquote(token.text), ValueType.TEXT, token.position)
        if token.kind == "keyword" and token.text in ("true", "false", "True", "False"):
            self.advance()
            return Literal(token.text.lower() == "true", ValueType.BOOL, token.position)
        if token.kind == "name":
            self.advance()
            if self.accept("op", "("):
                return Call(token.text, self.arguments(), token.position)
            return FieldRef(token.text, token.position)
        if self.accept("op", "("):
            node = self.expression()
            self.expect("op", ")")
            return node
        if self.accept("op", "["):
            return self.list_literal(token.position)
        raise RuleError(f"unexpected {self._describe()}", token.position)

    def arguments(self) -> list[Node]:
        args: list[Node] = []
        if self.accept("op", ")"):
            return args
        while True:
            args.append(self.expression())
            if self.accept("op", ")"):
                return args
            self.expect("op", ",")

    def list_literal(self, position: int) -> Node:
        items: list[Literal] = []
        if not self.accept("op", "]"):
            while True:
                item = self.unary()
                if not isinstance(item, Literal) or item.type not in (
                    ValueType.NUMBER,
                    ValueType.TEXT,
                ):
                    raise RuleError("a list holds number or text literals only", item.position)
                items.append(item)
                if self.accept("op", "]"):
                    break
                self.expect("op", ",")
        kinds = {item.type for item in items}
        if len(kinds) > 1:
            raise RuleError("a list mixes numbers and text", position)
        if not kinds:
            kind = ValueType.EMPTY_LIST
        elif kinds == {ValueType.NUMBER}:
            kind = ValueType.NUMBER_LIST
        else:
            kind = ValueType.TEXT_LIST
        return Literal([item.value for item in items], kind, position)


def _parse_number(token: Token) -> float | int:
    text = token.text
    value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
    if not math.isfinite(value):
        raise RuleError(f"number {text} is out of range", token.position)
    return value


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])
