"""Every ordered pair (and many triples) of consecutive rule kinds parses into exactly those rules.

A rule ends after its `^p`, after the hard-rule `.`, where the next rule's weight begins, or, for a
weighted rule without `^p`, where its expression cannot go on. The kinds: weighted and hard,
logical and arithmetic, weighted rules without an exponent and with `^1`/`^2`, arithmetic rules
with and without a summation and a filter clause, and rules that start or end the ways that can be
mistaken for a continuation of the previous rule (a number, `-`, `(`, `|X|`, `@Max`, a term
comparison). Each rule parsed alone is the reference; the expected kind, weight and exponent are
also written out.
"""
import itertools
from pathlib import Path

import pytest

from hlmrf import RuleError, parse_rules
from hlmrf.language import ArithmeticRule, LogicalRule

EXPONENTS = [("", False), (" ^1", False), (" ^2", True)]

WEIGHTED_LOGICAL = [
    "0.5: Friends(A, B) & Smokes(A) -> Smokes(B){e}",
    "0.25: Smokes(X){e}",
    "0.01: !Cancer(X){e}",
    "2: Lived(A, L) & Lived(B, L) & (A != B) -> Knows(A, B) | Knows(B, A){e}",
    "1: (Sim(A, B) & Block(A, B)) -> (Same(A, B) | !Known(A)){e}",
    "3: Knows(A, C) << Knows(A, B) & Knows(B, C){e}",
]
HARD_LOGICAL = [
    "Friends(A, B) -> Friends(B, A) .",
    "!Knows(A, A) .",
    "(A != B) & Lived(A, L) -> Knows(A, B) .",
]
WEIGHTED_ARITHMETIC = [  # (text, has a summation)
    ("0.5: Friends(A, B) + Enemies(A, B) <= 1{e}", False),
    ("4: Friends(A, B) = Friends(B, A){e}", False),
    ("1.5: 2 * Rating(U, I) - LocalRating(U, I) >= 0.5{e}", False),
    ("1: -Likes(X, Y) + 1 >= Fan(X){e}", False),
    ("2: Friends(A, B) <= 0.5 (A != B){e}", False),
    ("1: Rating(U, +I) / |I| = AvgRating(U){e}", True),
    ("1: Rating(U, +I) / |I| = AvgRating(U){e} {I: Rated(U, I)}", True),
    ("0.5: Friends(A, +B) <= 1{e} {B: Nice(B) & (A != B)}", True),
    ("3: @Max[1, |B|] * Friends(A, +B) <= 2{e}", True),
]
HARD_ARITHMETIC = [  # (text, has a summation)
    ("Friends(A, B) + Enemies(A, B) <= 1 .", False),
    ("Knows(P1, P2) = Knows(P2, P1) .", False),
    ("Cancer(X) <= 0.9 .", False),
    ("Cancer(X) <= 1.", False),
    ("-Fan(X) >= -1 .", False),
    ("2 Rating(U, I) <= 1.5 .", False),
    ("(Friends(A, B) + Enemies(A, B)) <= 1 .", False),
    ("@Min[1, 2] * Knows(A, B) <= 1 .", False),
    ("Friends(A, B) <= 1 (A != B) .", False),
    ("HasCat(A, +C) = 1 .", True),
    ("Friends(A, +B) <= 1 . {B: Nice(B) & !Similar(A, B)}", True),
    ("|B| * Friends(A, +B) >= 0 .", True),
]


def _kinds():
    """``(text, class, weight, squared, summation, filtered)`` for every rule kind."""
    out = []
    for t in WEIGHTED_LOGICAL:
        w = float(t.split(":")[0])
        out += [(t.replace("{e}", e), LogicalRule, w, sq, False, False) for e, sq in EXPONENTS]
    out += [(t, LogicalRule, None, False, False, False) for t in HARD_LOGICAL]
    for t, summed in WEIGHTED_ARITHMETIC:
        w = float(t.split(":")[0])
        out += [(t.replace("{e}", e), ArithmeticRule, w, sq, summed, "{I:" in t or "{B:" in t)
                for e, sq in EXPONENTS]
    out += [(t, ArithmeticRule, None, False, summed, "{" in t) for t, summed in HARD_ARITHMETIC]
    return out


KINDS = _kinds()
ALONE = {k[0]: parse_rules(k[0]).rules[0] for k in KINDS}


def test_the_kinds_cover_every_combination():
    combos = {(cls, weight is None, text.rstrip("}").rstrip().endswith(("^1", "^2")) or "^" in text,
               squared, summed, filtered) for text, cls, weight, squared, summed, filtered in KINDS}
    for cls in (LogicalRule, ArithmeticRule):
        assert (cls, True, False, False) in {c[:4] for c in combos}  # hard
        for has_exponent, squared in ((False, False), (True, False), (True, True)):
            assert (cls, False, has_exponent, squared) in {c[:4] for c in combos}
    for hard in (False, True):
        for summed, filtered in ((False, False), (True, False), (True, True)):
            assert (ArithmeticRule, hard, summed, filtered) in {(c[0], c[1], c[4], c[5]) for c in combos}


@pytest.mark.parametrize("text, cls, weight, squared, summed, filtered", KINDS,
                         ids=[k[0] for k in KINDS])
def test_each_kind_alone(text, cls, weight, squared, summed, filtered):
    rule = ALONE[text]
    assert isinstance(rule, cls)
    assert rule.weight == weight and rule.hard == (weight is None) and rule.squared == squared
    if cls is ArithmeticRule:
        assert bool(rule.sum_variables) == summed and bool(rule.filters) == filtered


def _ambiguous_on_one_line(first, second) -> bool:
    """`0.25: Smokes(X) -Fan(X) >= -1 .` on one line is read as one weighted arithmetic rule that
    wrongly ends with `.` (most likely a typo); a line break makes it two rules (tested below)."""
    return first[0] == "0.25: Smokes(X)" and second[0].startswith("-")


@pytest.mark.parametrize("first", KINDS, ids=[k[0] for k in KINDS])
def test_every_ordered_pair_parses_into_two_rules(first):
    for second in KINDS:
        for sep in ("\n", " "):
            text = first[0] + sep + second[0]
            if sep == " " and _ambiguous_on_one_line(first, second):
                with pytest.raises(RuleError, match="weighted rule cannot end with `.`"):
                    parse_rules(text)
                continue
            rules = parse_rules(text, "pair.psl").rules
            assert len(rules) == 2, text
            for rule, (t, cls, weight, squared, _, _) in zip(rules, (first, second)):
                assert isinstance(rule, cls), text
                assert (rule.weight, rule.squared) == (weight, squared), text
                assert rule == ALONE[t], text


def test_triples_parse_into_three_rules():
    # 16 kinds (each exponent, each class, the starts that look like continuations): 4,096 programs.
    wanted = {"0.5: Friends(A, B) & Smokes(A) -> Smokes(B)", "0.25: Smokes(X)",
              "0.5: Friends(A, B) + Enemies(A, B) <= 1", "0.5: Friends(A, +B) <= 1 {B: Nice(B) & (A != B)}",
              "Cancer(X) <= 0.9 .", "-Fan(X) >= -1 .", "2 Rating(U, I) <= 1.5 .",
              "Friends(A, +B) <= 1 . {B: Nice(B) & !Similar(A, B)}", "|B| * Friends(A, +B) >= 0 ."}
    picks = [k for k in KINDS if k[0] in wanted or k[0].startswith(("0.5: Friends(A, B) & Smokes(A) -> Smokes(B) ^",
                                                                    "0.5: Friends(A, B) + Enemies(A, B) <= 1 ^"))
             or (k[1] is LogicalRule and k[2] is None)]
    assert len(picks) == 16
    for trio in itertools.product(picks, repeat=3):
        text = "\n".join(k[0] for k in trio)
        assert list(parse_rules(text).rules) == [ALONE[k[0]] for k in trio], text


def test_the_smokers_example_with_a_constraint_after_a_prior():
    # The case of issue 12: a weighted rule without `^p` followed by a hard arithmetic rule.
    text = (Path(__file__).parents[3] / "examples" / "smokers" / "rules.psl").read_text()
    rules = parse_rules(text + "Cancer(X) <= 0.9 .\n", "rules.psl").rules
    assert len(rules) == 6
    prior, cap = rules[-2:]
    assert isinstance(prior, LogicalRule) and prior.weight == 0.01 and not prior.squared
    assert str(prior) == "0.01: !Cancer(X) ^1"
    assert isinstance(cap, ArithmeticRule) and cap.hard and cap.op == "<="
    assert str(cap) == "Cancer(X) <= 0.9 ."


@pytest.mark.parametrize("text, printed", [
    # a weighted logical rule, then a hard arithmetic rule on its own line that starts with `-`
    ("1: A(X)\n-B(X) <= 1 .", ["1: A(X) ^1", "-B(X) <= 1 ."]),
    ("1: A(X)\n  + 2 * B(X) <= 1 .", ["1: A(X) ^1", "2 * B(X) <= 1 ."]),
    # ... but a multi-line weighted arithmetic rule stays one rule
    ("1: A(X)\n  - B(X) <= 1", ["1: A(X) - B(X) <= 1 ^1"]),
    ("1: A(X)\n  - B(X) <= 1\nC(X) <= 1 .", ["1: A(X) - B(X) <= 1 ^1", "C(X) <= 1 ."]),
    # the right side of a weighted arithmetic rule ends where the next rule's relation shows
    ("1: A(X) <= 1\nB(X) <= 1 .", ["1: A(X) <= 1 ^1", "B(X) <= 1 ."]),
    ("1: A(X) <= 1 B(X) <= 1 .", ["1: A(X) <= 1 ^1", "B(X) <= 1 ."]),
    ("1: A(X) <= 1\n2 B(X) <= 1 .", ["1: A(X) <= 1 ^1", "2 * B(X) <= 1 ."]),
    ("1: A(X) <= 1\n-B(X) <= 1 .", ["1: A(X) <= 1 ^1", "-B(X) <= 1 ."]),
    ("1: A(X) <= C(X)\n- B(X) <= 1 .", ["1: A(X) - C(X) <= 0 ^1", "-B(X) <= 1 ."]),
    ("1: A(X) <= 1\nB(X) -> C(X) .", ["1: A(X) <= 1 ^1", "B(X) -> C(X) ."]),
    ("1: A(X) <= 1\nB(X) | C(X) .", ["1: A(X) <= 1 ^1", "B(X) | C(X) ."]),
    ("1: A(X) <= 1 + 2 B(X)\nC(X) <= 1 .", ["1: A(X) - 2 * B(X) <= 1 ^1", "C(X) <= 1 ."]),
    ("1: A(X) <= 1 + 2\nB(X) + 3 C(X) <= 1 .", ["1: A(X) <= 3 ^1", "B(X) + 3 * C(X) <= 1 ."]),
    # a term comparison after a weighted arithmetic rule, or the start of the next logical rule
    ("1: A(X, Y) <= 1\n(X != Y) & B(X, Y) -> C(X) .",
     ["1: A(X, Y) <= 1 ^1", "B(X, Y) & (X != Y) -> C(X) ."]),
    ("1: A(X, Y) <= 1 (X != Y)\nB(X) -> C(X) .", ["1: A(X, Y) <= 1 (X != Y) ^1", "B(X) -> C(X) ."]),
    # a weighted logical rule, then a hard arithmetic rule that starts with `|X|`
    ("1: A(X)\n|Y| * B(+Y) <= 1 .", ["1: A(X) ^1", "|Y| * B(+Y) <= 1 ."]),
    # the hard rule's `.` right before the next rule's weight written `.5`
    ("A(X) <= 1 .5: B(X)", ["A(X) <= 1 .", "5: B(X) ^1"]),
    ("A(X) -> B(X) .5: C(X) ^2", ["A(X) -> B(X) .", "5: C(X) ^2"]),
    ("A(X) <= 1 . .5: B(X)", ["A(X) <= 1 .", "0.5: B(X) ^1"]),
])
def test_rule_boundaries_that_look_like_continuations(text, printed):
    assert [str(r) for r in parse_rules(text).rules] == printed


@pytest.mark.parametrize("text, line, col, words", [
    # one line: read as one weighted rule that wrongly ends with `.`
    ("1: A(X) - B(X) <= 1 .", 1, 21, "weighted rule cannot end with `.`"),
    # a hard rule whose `.` is missing, and the next one begins
    ("A(X) <= 1\nB(X) <= 1 .", 2, 1, "expected `.` to end the unweighted (hard) rule"),
    ("1: 0 <= A(X) <= 1", 1, 14, "a second `<=`: an arithmetic rule compares its two sides once"),
    ("1: -A(X) & B(X) <= 1", 1, 10, "expected `=`, `<=` or `>=` in the arithmetic rule"),
])
def test_boundaries_that_stay_errors(text, line, col, words):
    with pytest.raises(RuleError) as info:
        parse_rules(text, "rules.psl")
    msg = str(info.value)
    assert msg.startswith(f"rules.psl:{line}:{col}: ") and words in msg, msg
