"""CI gates such as ``--require "aopc(lrp) >= 1.2 * aopc(random)"``.

A requirement is one comparison between two arithmetic expressions over numbers,
bare variables (``clusters``) and calls (``aopc(lrp)``). It is parsed here by hand,
never handed to ``eval``: it can only reach the names the caller allows and only
do + - * / and one comparison, so a requirement from a CI file cannot run code.
The caller maps names to numbers and decides what a failed requirement means.

A caller may name predicates: functions that can stand alone, ``beats(lrp, sa)``
meaning ``beats(lrp, sa) > 0``.

``==`` and ``!=`` compare the floats exactly, so they are only right for values
that are exact by nature (counts such as ``clusters``); prefer inequalities.
"""

from __future__ import annotations

import math
import operator
import re
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

from ..errors import XaiError

_LETTERS = frozenset(string.ascii_letters + "_")
_DIGITS = frozenset(string.digits)
# Everything a requirement may contain besides whitespace; anything else is
# reported where it is, before parsing, so quotes, brackets or '@' never get far.
_ALPHABET = _LETTERS | _DIGITS | frozenset(".,()+-*/<>=!")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
            "==": operator.eq, "!=": operator.ne}
_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_OPERATORS = "(one of > >= < <= == !=)"
_INDENT = "  "  # before the echoed requirement and its caret line in error messages


# The syntax tree. Each node knows its span [start, end) in the text, so that
# ``detail`` can show the requirement as the user wrote it, values substituted.
@dataclass(frozen=True)
class _Num:
    start: int
    end: int
    value: float


@dataclass(frozen=True)
class _Ref:
    start: int
    end: int
    name: str
    args: tuple[str, ...]

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return self.name, self.args

    @property
    def shown(self) -> str:
        return f"{self.name}({', '.join(self.args)})" if self.args else self.name


@dataclass(frozen=True)
class _Neg:
    start: int
    end: int
    operand: object


@dataclass(frozen=True)
class _Bin:
    start: int
    end: int
    op: str
    left: object
    right: object


def _refs(node):
    """The references under ``node`` in order of appearance (the tree is in text order)."""
    if isinstance(node, _Ref):
        yield node
    elif isinstance(node, _Neg):
        yield from _refs(node.operand)
    elif isinstance(node, _Bin):
        yield from _refs(node.left)
        yield from _refs(node.right)


def _format(value: float) -> str:
    return format(value, ".4g")


class _NotANumber(Exception):
    """A value on the way is NaN or infinite: the requirement fails with this message."""


@dataclass(frozen=True)
class Outcome:
    """The result of one requirement, with the numbers that decided it."""

    requirement: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Requirement:
    """A parsed requirement: one comparison between two arithmetic expressions."""

    text: str
    _left: object = field(repr=False, compare=False)
    _op: str = field(repr=False, compare=False)
    _right: object = field(repr=False, compare=False)
    _implicit: bool = field(default=False, repr=False, compare=False)   # a predicate: '> 0'

    def references(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every name the requirement uses, in order of appearance: ('aopc', ('lrp',)) for a
        call, ('clusters', ()) for a variable (no duplicates), so the caller knows what to
        compute before checking."""
        keys = {}
        for side in (self._left, self._right):
            for ref in _refs(side):
                keys.setdefault(ref.key, None)
        return list(keys)

    def check(self, lookup: Callable[[str, tuple[str, ...]], float]) -> Outcome:
        """Evaluate with lookup(name, args) giving each referenced value (asked once each).

        NaN or infinite values, from ``lookup`` or on the way (division by zero, overflow),
        fail the requirement: a gate must not pass on a number that is not one."""
        values = {}
        for key in self.references():
            value = float(lookup(*key))
            if not math.isfinite(value):
                shown = _Ref(0, 0, *key).shown
                return Outcome(self.text, False,
                               f"{self.text}: {shown} is not a number ({value})")
            values[key] = value
        try:
            left = self._evaluate(self._left, values)
            right = self._evaluate(self._right, values)
        except _NotANumber as error:
            return Outcome(self.text, False, f"{self.text}: {error}")
        passed = _COMPARE[self._op](left, right)
        shown_right = "0" if self._implicit else self._show(self._right, right, values)
        detail = f"{self.text}: {self._show(self._left, left, values)} {self._op} {shown_right}"
        return Outcome(self.text, passed, detail)

    def _substitute(self, node, values) -> str:
        """The text of ``node`` with each reference replaced by its value."""
        parts, pos = [], node.start
        for ref in _refs(node):
            before = self.text[node.start:ref.start].rstrip()
            shown = _format(values[ref.key])
            if shown.startswith("-") and before and before[-1] in "+-*/":
                shown = f"({shown})"  # "1 - (-0.5)", not "1 - -0.5"
            parts += [self.text[pos:ref.start], shown]
            pos = ref.end
        parts.append(self.text[pos:node.end])
        return "".join(parts)

    def _show(self, side, value, values) -> str:
        """One side substituted, and ' = value' where that is not already plain to see."""
        text = self._substitute(side, values)
        if isinstance(side, (_Num, _Ref)) or _format(value) == text:
            return text
        return f"{text} = {_format(value)}"

    def _evaluate(self, node, values) -> float:
        if isinstance(node, _Num):
            return node.value
        if isinstance(node, _Ref):
            return values[node.key]
        if isinstance(node, _Neg):
            return -self._evaluate(node.operand, values)
        left = self._evaluate(node.left, values)
        right = self._evaluate(node.right, values)
        span = self.text[node.start:node.end]
        if node.op == "/":
            if right == 0:
                raise _NotANumber(f"{span} is not a number "
                                  f"(division by zero: {self._substitute(node, values)})")
            result = left / right
        else:
            result = _ARITHMETIC[node.op](left, right)
        if not math.isfinite(result):  # overflow, e.g. 1e308 * 10
            raise _NotANumber(f"{span} is not a number "
                              f"({self._substitute(node, values)} = {result})")
        return result


def parse(text: str, functions: Mapping[str, int], variables: Collection[str],
          arguments: Collection[str], predicates: Collection[str] = ()) -> Requirement:
    """Parse ``text`` into a Requirement, allowing only the given names.

    ``functions`` maps each function name to its maximum number of arguments (at least
    one is needed); ``variables`` are the bare names; ``arguments`` the names allowed
    inside a call's parentheses; ``predicates`` the functions that may stand alone (a
    call alone means 'is above 0'). Names are checked here, so a typo fails at once with
    a message that points at it, not after an expensive evaluation."""
    return _Parser(text, functions, variables, arguments, predicates).requirement()


def _error(text: str, pos: int, message: str, hint: str = "") -> XaiError:
    """The message quotes the requirement and draws a caret under ``pos``."""
    shown = "".join(" " if c.isspace() else c for c in text)  # keeps the caret aligned
    where = f"at position {pos}" + (" (the end)" if pos >= len(text) and text.strip() else "")
    first = f"--require '{shown}': {message} {where}" + (f" {hint}" if hint else "")
    return XaiError(f"{first}\n{_INDENT}{shown}\n{_INDENT}{' ' * pos}^")


def _known(names) -> str:
    return f"(known: {', '.join(sorted(names)) or 'none'})"


class _Parser:
    """Recursive descent over the characters; ``pos`` is the next unread one."""

    def __init__(self, text, functions, variables, arguments, predicates):
        self.text, self.pos = text, 0
        self.functions, self.variables, self.arguments = functions, variables, arguments
        self.predicates = predicates

    def fail(self, pos: int, message: str, hint: str = ""):
        raise _error(self.text, pos, message, hint)

    def peek(self) -> str:
        """The next character after whitespace ('' at the end); whitespace is consumed."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def comparison(self) -> str:
        """The comparison operator at ``pos``, or '' (not consumed)."""
        two = self.text[self.pos:self.pos + 2]
        if two in (">=", "<=", "==", "!="):
            return two
        return two[:1] if two[:1] in ("<", ">") else ""

    def requirement(self) -> Requirement:
        if not self.text.strip():
            self.fail(0, "empty requirement")
        for pos, char in enumerate(self.text):
            if char not in _ALPHABET and not char.isspace():
                self.fail(pos, f"unexpected character {char!r}")
        left = self.expr()
        if not self.peek() and isinstance(left, _Ref) and left.name in self.predicates:
            end = len(self.text)
            return Requirement(self.text, left, ">", _Num(end, end, 0.0), _implicit=True)
        op = self.comparison()
        if not op:
            self.after_operand("left")
        self.pos += len(op)
        right = self.expr()
        if self.peek():
            self.after_operand("right")
        return Requirement(self.text, left, op, right)

    def after_operand(self, where: str, opened: int | None = None):
        """Fail on what follows a complete operand where neither an operator nor the
        expected comparison, ')' or end is: ``where`` is 'left', 'right' or 'paren'."""
        char, pos = self.peek(), self.pos
        if not char:
            if where == "left":
                self.fail(pos, "missing comparison operator", _OPERATORS)
            self.fail(opened, "unclosed '('")
        if char == ")":
            self.fail(pos, "unmatched ')'")
        if self.comparison():
            if where == "right":
                self.fail(pos, "a second comparison operator",
                          "(one comparison per --require; repeat --require for more)")
            if where == "paren":
                self.fail(pos, "expected ')' before the comparison",
                          f"(to close the '(' at position {opened})")
        if char == "=":
            self.fail(pos, "'=' is not a comparison operator", "(did you mean '=='?)")
        if char == "!":
            self.fail(pos, "'!' is not an operator", "(did you mean '!='?)")
        if where == "left":
            self.fail(pos, "expected an operator (+ - * /) or a comparison", _OPERATORS)
        if where == "paren":
            self.fail(pos, "expected an operator (+ - * /) or ')'")
        self.fail(pos, f"unexpected {self.text[pos:].rstrip()!r} after the requirement")

    def expr(self) -> _Num | _Ref | _Neg | _Bin:
        return self.left_associative(("+", "-"), self.term)

    def term(self) -> _Num | _Ref | _Neg | _Bin:
        return self.left_associative(("*", "/"), self.unary)

    def left_associative(self, operators: tuple[str, ...],
                         operand: Callable[[], _Num | _Ref | _Neg | _Bin]) -> _Num | _Ref | _Neg | _Bin:
        """``operand (op operand)*`` for ``op`` in ``operators``, grouped from the left."""
        node = operand()
        while self.peek() in operators:
            op = self.text[self.pos]
            self.pos += 1
            right = operand()
            node = _Bin(node.start, right.end, op, node, right)
        return node

    def unary(self) -> _Num | _Ref | _Neg | _Bin:
        if self.peek() == "-":
            start = self.pos
            self.pos += 1
            operand = self.unary()
            return _Neg(start, operand.end, operand)
        return self.atom()

    def atom(self) -> _Num | _Ref | _Neg | _Bin:
        char, start = self.peek(), self.pos
        if char == "(":
            self.pos += 1
            inner = self.expr()
            if self.peek() != ")":
                self.after_operand("paren", opened=start)
            self.pos += 1
            return replace(inner, start=start, end=self.pos)
        if char in _DIGITS or (char == "." and self.text[start + 1:start + 2] in _DIGITS):
            return self.number()
        if char in _LETTERS:
            return self.name()
        self.fail(start, "expected a number, a name or '('")

    def number(self) -> _Num:
        start = self.pos
        end = _NUMBER.match(self.text, start).end()
        while end < len(self.text) and (self.text[end] in _LETTERS | _DIGITS
                                        or self.text[end] == "."):
            end += 1  # "1e", "1.2.3", "2x": one malformed token, not a number and a name
        token = self.text[start:end]
        if _NUMBER.fullmatch(token) is None:
            self.fail(start, f"malformed number {token!r}")
        value = float(token)
        if not math.isfinite(value):
            self.fail(start, f"number {token!r} is too large")
        self.pos = end
        return _Num(start, end, value)

    def name(self) -> _Ref:
        start = self.pos
        name = _NAME.match(self.text, start).group()
        self.pos = end = start + len(name)
        if self.peek() == "(":
            if name not in self.functions:
                if name in self.variables:
                    self.fail(start, f"{name!r} is not a function",
                              "(a variable takes no parentheses)")
                self.fail(start, f"unknown function {name!r}", _known(self.functions))
            return self.call(start, name)
        if name in self.variables:
            return _Ref(start, end, name, ())
        if name in self.functions:
            self.fail(start, f"{name!r} needs arguments in parentheses",
                      f"(e.g. {name}({next(iter(sorted(self.arguments)), 'x')}))")
        self.fail(start, f"unknown name {name!r}",
                  _known([*self.variables, *(f"{f}(...)" for f in self.functions)]))

    def call(self, start: int, name: str) -> _Ref:
        opened = self.pos
        self.pos += 1
        limit = self.functions[name]
        args = []
        while True:
            char = self.peek()
            if not char:
                self.fail(opened, "unclosed '('")
            if char == ")" and not args:
                self.fail(self.pos, f"{name}() needs an argument", _known(self.arguments))
            match = _ARG.match(self.text, self.pos)
            if match is None:
                self.fail(self.pos, "expected an argument name", _known(self.arguments))
            if len(args) >= limit:
                plural = "argument" if limit == 1 else "arguments"
                self.fail(self.pos, f"too many arguments: {name}() takes at most {limit} {plural}")
            if match.group() not in self.arguments:
                self.fail(self.pos, f"unknown argument {match.group()!r}",
                          _known(self.arguments))
            args.append(match.group())
            self.pos = match.end()
            char = self.peek()
            if char == ",":
                self.pos += 1
            elif char == ")":
                self.pos += 1
                return _Ref(start, self.pos, name, tuple(args))
            elif not char:
                self.fail(opened, "unclosed '('")
            else:
                self.fail(self.pos, "expected ',' or ')' after an argument")
