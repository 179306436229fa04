"""Hypothesis strategies that write PSL rule text (tests only; needs hypothesis).

:func:`logical` draws a logical rule, :func:`arithmetic` an arithmetic one (sums, coefficients,
filters), weighted or hard, over a few fixed predicates, variables and quoted constants. The text
need not be valid PSL: the parser may reject some draws, and the tests say what they expect then.
"""
from hypothesis import strategies as st

__all__ = ["logical", "arithmetic", "atom", "literal", "coef"]

VARS = ["A", "B", "C", "X1"]
PREDS = ["Knows", "Lived", "HasCat", "p_2"]
consts = st.sampled_from(["'a'", "'b c'", "\"x\"", "'it\\'s'"])
term = st.one_of(st.sampled_from(VARS), consts)
weight = st.sampled_from(["1", "0.5", "20", "1e-3", "2.25"])
number = st.sampled_from(["0", "1", "0.5", "2", "3.75"])


@st.composite
def atom(draw, sum_var=None):
    args = draw(st.lists(term, min_size=1, max_size=3))
    if sum_var is not None:
        args[draw(st.integers(0, len(args) - 1))] = "+" + sum_var
    return f"{draw(st.sampled_from(PREDS))}({', '.join(args)})"


@st.composite
def literal(draw):
    return ("!" if draw(st.booleans()) else "") + draw(atom())


@st.composite
def logical(draw):
    body = draw(st.lists(literal(), min_size=0, max_size=3))
    head = draw(st.lists(literal(), min_size=1, max_size=2))
    cmps = [f"({draw(st.sampled_from(VARS))} {draw(st.sampled_from(['!=', '==', '%', '-']))} "
            f"{draw(st.sampled_from(VARS))})" for _ in range(draw(st.integers(0, 2)))] if body else []
    core = (" & ".join(body + cmps) + draw(st.sampled_from([" -> ", " >> "])) + " | ".join(head)) \
        if body else " | ".join(head)
    if draw(st.booleans()):
        return core + " ."
    return f"{draw(weight)}: {core}" + draw(st.sampled_from(["", " ^1", " ^2"]))


@st.composite
def coef(draw, card):
    c = draw(st.one_of(number, st.just(f"|{card}|") if card else number))
    if draw(st.booleans()):
        c = f"@{draw(st.sampled_from(['Min', 'Max']))}[{c}, {draw(number)}]"
    if draw(st.booleans()):
        c = f"({c} {draw(st.sampled_from(['+', '-', '*']))} {draw(number)})"
    return c


@st.composite
def arithmetic(draw):
    card = "S" if draw(st.booleans()) else None
    side = []
    for k in range(draw(st.integers(1, 3))):
        a = draw(atom(sum_var=card if (card and k == 0) else None))
        form = draw(st.sampled_from(["{a}", "{c} * {a}", "{a} / 2", "-{a}", "({a} + 1)"]))
        side.append(form.format(a=a, c=draw(coef(card))))
    lhs = " + ".join(side)
    rhs = draw(st.one_of(number, st.just(draw(atom())), st.just(f"{draw(coef(card))}")))
    core = f"{lhs} {draw(st.sampled_from(['=', '<=', '>=']))} {rhs}"
    filt = f" {{S: Lived(S, A) & !Knows(S, 'a')}}" if card and draw(st.booleans()) else ""
    if draw(st.booleans()):
        return core + " ." + filt
    return f"{draw(weight)}: {core}" + draw(st.sampled_from(["", " ^1", " ^2"])) + filt
