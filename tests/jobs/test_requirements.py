"""--require expressions: grammar, values, details, errors with carets, and safety."""

import ast
import math
from pathlib import Path

import pytest

from xai_cli.errors import XaiError
from xai_cli.jobs import requirements
from xai_cli.jobs.requirements import Outcome, Requirement, parse

FUNCTIONS = {"aopc": 1, "pointing": 2}
VARIABLES = {"clusters", "x", "y"}
ARGUMENTS = {"lrp", "random", "sa", "integrated-gradients", "lrp.epsilon", "blur"}
VALUES = {
    ("aopc", ("lrp",)): 1.4321,
    ("aopc", ("random",)): 1.2104,
    ("aopc", ("sa",)): -0.5,
    ("aopc", ("integrated-gradients",)): 0.75,
    ("aopc", ("lrp.epsilon",)): 2.0,
    ("pointing", ("lrp",)): 0.5,
    ("pointing", ("lrp", "blur")): 0.25,
    ("clusters", ()): 1.0,
    ("x", ()): 3.0,
    ("y", ()): 0.0,
}
PREFIX = "  "  # what the message puts before the echoed requirement and the caret


def req(text):
    return parse(text, FUNCTIONS, VARIABLES, ARGUMENTS)


def check(text, **changed):
    """Outcome of ``text`` with VALUES, some replaced: changed={'clusters': nan}."""
    values = dict(VALUES)
    for key in list(values):
        shown = f"{key[0]}({', '.join(key[1])})" if key[1] else key[0]
        if shown in changed:
            values[key] = changed[shown]
    return req(text).check(lambda name, args: values[(name, args)])


@pytest.mark.parametrize("text, passed", [
    # numbers in every format
    ("12 == 12", True), ("12 == 13", False),
    ("1.5 == 3 / 2", True), ("1.5 > 1.5", False),
    (".5 == 0.5", True), (".5 > 0.5", False),
    ("1e-3 == 0.001", True), ("1e-3 > 0.001", False),
    ("2.5E+2 == 250", True), ("2.5E+2 < 250", False),
    ("2.e1 == 20", True), ("1E2 == 100", True),
    # unary minus
    ("-2 < -1", True), ("-2 > -1", False),
    ("--2 == 2", True), ("-x == -3", True), ("-x == 3", False),
    ("2 * -x == -6", True), ("-(1 + 2) == -3", True), ("- (1 + 2) == 3", False),
    # precedence and associativity
    ("1 + 2 * 3 == 7", True), ("1 + 2 * 3 == 9", False),
    ("(1 + 2) * 3 == 9", True), ("(1 + 2) * 3 == 7", False),
    ("10 - 4 - 3 == 3", True), ("8 / 4 / 2 == 1", True), ("8 / 4 / 2 == 4", False),
    ("2 - -1 == 3", True), ("1 + 6 / 2 - 2 * 2 == 0", True), ("((2)) * ((3 + 1)) == 8", True),
    # each comparison operator, passing and failing
    ("2 > 1", True), ("1 > 1", False),
    ("1 >= 1", True), ("0.5 >= 1", False),
    ("1 < 2", True), ("2 < 2", False),
    ("2 <= 2", True), ("3 <= 2", False),
    ("2 == 2", True), ("2 == 2.0001", False),
    ("1 != 2", True), ("1 != 1", False),
    # calls with one and two arguments, arguments with '-' and '.'
    ("aopc(lrp) >= 1.1 * aopc(random)", True), ("aopc(lrp) >= 1.2 * aopc(random)", False),
    ("pointing(lrp, blur) == 0.25", True), ("pointing( lrp ,blur ) < 0.25", False),
    ("pointing(lrp) > pointing(lrp,blur)", True), ("pointing (lrp) < 0.5", False),
    ("aopc(integrated-gradients) == 0.75", True), ("aopc(integrated-gradients) > 0.75", False),
    ("aopc(lrp.epsilon) == 2", True), ("aopc(lrp.epsilon) < 2", False),
    # bare variables; outside a call '-' is always minus
    ("clusters <= 1", True), ("clusters < 1", False),
    ("x-y==3", True), ("x-1 == 3", False), ("\tx >\n1 ", True),
])
def test_grammar_evaluates_to_the_right_truth_value(text, passed):
    outcome = check(text)
    assert isinstance(outcome, Outcome)
    assert outcome.passed is passed, outcome.detail
    assert outcome.requirement == text


def test_references_in_order_of_appearance_without_duplicates():
    requirement = req("clusters + aopc(lrp) - aopc(random) > aopc(lrp) * clusters"
                      " + pointing(lrp, blur) - pointing(lrp) - x")
    assert isinstance(requirement, Requirement)
    assert requirement.text.startswith("clusters + aopc(lrp)")
    assert requirement.references() == [
        ("clusters", ()), ("aopc", ("lrp",)), ("aopc", ("random",)),
        ("pointing", ("lrp", "blur")), ("pointing", ("lrp",)), ("x", ())]
    assert req("1 < 2").references() == []


def test_each_reference_is_looked_up_once():
    asked = []

    def lookup(name, args):
        asked.append((name, args))
        return VALUES[(name, args)]

    outcome = req("aopc(lrp) + aopc(lrp) > 2 * aopc(lrp) - x - x").check(lookup)
    assert outcome.passed
    assert asked == [("aopc", ("lrp",)), ("x", ())]


@pytest.mark.parametrize("text, detail", [
    ("aopc(lrp) >= 1.2 * aopc(random)",
     "aopc(lrp) >= 1.2 * aopc(random): 1.432 >= 1.2 * 1.21 = 1.452"),
    ("clusters <= 1", "clusters <= 1: 1 <= 1"),
    ("aopc(lrp) - aopc(sa) > 2 * x", "aopc(lrp) - aopc(sa) > 2 * x: 1.432 - (-0.5) = 1.932 > 2 * 3 = 6"),
    ("-x < aopc(sa)", "-x < aopc(sa): -3 < -0.5"),
    ("pointing(lrp, blur) < 1e-3", "pointing(lrp, blur) < 1e-3: 0.25 < 1e-3"),
])
def test_detail_shows_values_and_computed_sides(text, detail):
    assert check(text).detail == detail


@pytest.mark.parametrize("text, changed, detail", [
    ("pointing(lrp) > 0.5", {"pointing(lrp)": math.nan},
     "pointing(lrp) > 0.5: pointing(lrp) is not a number (nan)"),
    # NaN != 0.5 is True in IEEE arithmetic; the gate must still fail
    ("pointing(lrp) != 0.5", {"pointing(lrp)": math.nan},
     "pointing(lrp) != 0.5: pointing(lrp) is not a number (nan)"),
    ("clusters <= 1", {"clusters": math.inf}, "clusters <= 1: clusters is not a number (inf)"),
    ("clusters < 1", {"clusters": -math.inf}, "clusters < 1: clusters is not a number (-inf)"),
    ("x / y > 1", {}, "x / y > 1: x / y is not a number (division by zero: 3 / 0)"),
    ("x / y < 1", {}, "x / y < 1: x / y is not a number (division by zero: 3 / 0)"),
    ("aopc(lrp) / (clusters - 1) < 1", {},
     "aopc(lrp) / (clusters - 1) < 1: aopc(lrp) / (clusters - 1) is not a number "
     "(division by zero: 1.432 / (1 - 1))"),
    ("1 < 0 / y", {}, "1 < 0 / y: 0 / y is not a number (division by zero: 0 / 0)"),
    ("1e308 * 10 > 1", {}, "1e308 * 10 > 1: 1e308 * 10 is not a number (1e308 * 10 = inf)"),
])
def test_values_that_are_not_numbers_fail(text, changed, detail):
    outcome = check(text, **changed)
    assert outcome.passed is False
    assert outcome.detail == detail


def error_of(text):
    with pytest.raises(XaiError) as caught:
        req(text)
    assert caught.value.exit_code == 2
    return str(caught.value)


@pytest.mark.parametrize("text, position, message", [
    ("", 0, "empty requirement"),
    ("   ", 0, "empty requirement"),
    ("x > 1 $", 6, "unexpected character '$'"),
    ("x > [1]", 4, "unexpected character '['"),
    ("aopc(lrp) >= 1.2 *", 18, "expected a number, a name or '('"),
    ("x ** 2 > 1", 3, "expected a number, a name or '('"),
    ("() > 1", 1, "expected a number, a name or '('"),
    ("aopx(lrp) > 1", 0, "unknown function 'aopx'"),
    ("x > 2 * sqrt(x)", 8, "unknown function 'sqrt'"),
    ("clusterz <= 1", 0, "unknown name 'clusterz'"),
    ("1 < lrp", 4, "unknown name 'lrp'"),
    ("clusters(lrp) <= 1", 0, "'clusters' is not a function"),
    ("aopc > 1", 0, "'aopc' needs arguments in parentheses"),
    ("aopc(lpr) > 1", 5, "unknown argument 'lpr'"),
    ("pointing(lrp, blurr) > 1", 14, "unknown argument 'blurr'"),
    ("aopc(lrp, sa) > 1", 10, "too many arguments: aopc() takes at most 1 argument"),
    ("pointing(lrp, blur, sa) > 1", 20, "too many arguments: pointing() takes at most 2 arguments"),
    ("aopc() > 1", 5, "aopc() needs an argument"),
    ("aopc(1) > 1", 5, "expected an argument name"),
    ("aopc(lrp,) > 1", 9, "expected an argument name"),
    ("aopc(lrp > 1", 9, "expected ',' or ')' after an argument"),
    ("aopc(lrp", 4, "unclosed '('"),
    ("x > (1 + 2", 4, "unclosed '('"),
    ("((x) > 1", 5, "expected ')' before the comparison"),
    ("(1 + 2 3) > 1", 7, "expected an operator (+ - * /) or ')'"),
    ("x > 1)", 5, "unmatched ')'"),
    ("x) > 1", 1, "unmatched ')'"),
    ("aopc(lrp)", 9, "missing comparison operator"),
    ("aopc(lrp) aopc(sa)", 10, "expected an operator (+ - * /) or a comparison"),
    ("1 < x < 2", 6, "a second comparison operator"),
    ("1 < x == 2", 6, "a second comparison operator"),
    ("x = 1", 2, "'=' is not a comparison operator"),
    ("x ! 1", 2, "'!' is not an operator"),
    ("x > 1 2", 6, "unexpected '2' after the requirement"),
    ("x > 1 y", 6, "unexpected 'y' after the requirement"),
    ("x > 1e", 4, "malformed number '1e'"),
    ("1.2.3 > 1", 0, "malformed number '1.2.3'"),
    ("2x > 1", 0, "malformed number '2x'"),
    ("1e999 > 1", 0, "number '1e999' is too large"),
])
def test_malformed_requirements_point_at_the_position(text, position, message):
    first, echoed, caret = error_of(text).split("\n")
    where = f"at position {position}" + (" (the end)" if position == len(text) and text.strip()
                                         else "")
    assert first.startswith(f"--require '{text}': {message} {where}"), first
    assert echoed == PREFIX + text
    assert caret == PREFIX + " " * position + "^"
    assert caret.index("^") == len(PREFIX) + position


def test_error_messages_exactly():
    assert error_of("aopc(lrp) >= 1.2 *").split("\n")[0] == (
        "--require 'aopc(lrp) >= 1.2 *': expected a number, a name or '(' at position 18 "
        "(the end)")
    assert error_of("aopc(lpr) > 1") == (
        "--require 'aopc(lpr) > 1': unknown argument 'lpr' at position 5 "
        "(known: blur, integrated-gradients, lrp, lrp.epsilon, random, sa)\n"
        "  aopc(lpr) > 1\n"
        "       ^")
    assert error_of("clusterz <= 1").split("\n")[0].endswith(
        "(known: aopc(...), clusters, pointing(...), x, y)")


def test_caret_stays_aligned_with_tabs_and_newlines():
    _, echoed, caret = error_of("x\t>\n1 $").split("\n")
    assert echoed == PREFIX + "x > 1 $"
    assert caret.index("^") == len(PREFIX) + 6


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')",
    "__import__(os) > 1",
    "aopc(lrp).real",
    "aopc(lrp).real > 1",
    "x > aopc(lrp).real",
    "x.__class__ > 1",
    "[c for c in ()] > 1",
    "lambda: 0",
    "x > 1 or __import__",
    "x > 1 if 1 else 2",
    "aopc(__import__) > 1",
    "open(x) > 1",
    "x ** 1000 > 1",
])
def test_code_is_rejected_never_evaluated(text):
    error_of(text)


def test_module_is_plain_python_without_eval():
    source = Path(requirements.__file__).read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "math", "operator", "re", "string", "collections",
                        "dataclasses", "errors"}, imported
    called = {node.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}


def test_a_predicate_may_stand_alone_and_means_above_zero():
    def parsed(text):
        return parse(text, {**FUNCTIONS, "beats": 2}, VARIABLES, ARGUMENTS, predicates={"beats"})

    values = {("beats", ("lrp", "sa")): 0.25, ("beats", ("sa", "lrp")): -0.5, ("x", ()): 3.0}
    ahead = parsed("beats(lrp, sa)").check(lambda n, a: values[n, a])
    assert ahead.passed and ahead.detail == "beats(lrp, sa): 0.25 > 0"
    behind = parsed("beats(sa, lrp)  ").check(lambda n, a: values[n, a])
    assert not behind.passed and behind.detail.endswith(": -0.5 > 0")
    assert parsed("beats(lrp, sa) > 0.3").check(lambda n, a: values[n, a]).passed is False
    for alone in ("aopc(lrp)", "x", "beats(lrp, sa) + 1"):   # only a predicate, and alone
        with pytest.raises(XaiError, match="missing comparison operator"):
            parsed(alone)
