"""Readable text for ground potentials: the ground rule as PSL prints it, and the linear form.

``describe_row`` gives a row's distance form (weight, exponent, the linear function with atom
names); ``ground_rule_text`` gives the rule with its substitution filled in, the way the reference
engine dumps ground rules (``20.0: LIVED('a', 'x') & LIVED('b', 'x') & ('a' != 'b') ->
KNOWS('a', 'b') ^2``), which needs a model grounded with ``keep_substitutions=True``. Used by
error messages (which constraints are violated) and by ``hlmrf-infer --ground-rules``.
"""
from __future__ import annotations

from dataclasses import replace

from hlmrf.language.ast import (
    ArithmeticRule,
    Atom,
    BoolOp,
    Comparison,
    Constant,
    FilterClause,
    LinearExpr,
    Literal,
    LogicalRule,
    Variable,
    coef_neg,
)
from hlmrf.model.hlmrf import HLMRF
from hlmrf.model.terms import Kind


def describe_row(model: HLMRF, i: int, with_rule: bool = True, y=None) -> str:
    """E.g. ``20 * max(0, Knows(a, b) - Knows(b, a) + 0.0)^2   # rule 3: ...``.

    With ``y`` (a state of the model's variables) each atom's value there follows the rule:
    ``... at Knows(a, b) = 0.7, Knows(b, a) = 0.1``.
    """
    A = model.A
    lo, hi = A.indptr[i], A.indptr[i + 1]
    parts, values = [], []
    for j, a in zip(A.indices[lo:hi], A.data[lo:hi]):
        name = model.index.atom_name(int(j)) if model.index.predicates else f"y[{j}]"
        coef = "" if abs(a) == 1 else f"{abs(a):g} * "
        parts.append(("- " if a < 0 else "+ ") + coef + name)
        if y is not None:
            values.append(f"{name} = {float(y[j]):.4g}")
    expr = " ".join(parts).lstrip("+ ")
    c = float(model.c[i])
    if c:
        expr += f" {'-' if c > 0 else '+'} {abs(c):g}"
    kind = int(model.kind[i])
    rule = int(model.rule[i])
    texts = model.index.rule_texts
    src = f"   # rule {rule + 1}: {texts[rule]}" if with_rule and rule < len(texts) else ""
    if values:
        src += f"   at {', '.join(values)}"
    if kind == Kind.LEQ:
        return f"{expr} <= 0 .{src}"
    if kind == Kind.EQ:
        return f"{expr} = 0 .{src}"
    inner = f"max(0, {expr})" if kind == Kind.HINGE else f"({expr})"
    power = "^2" if model.p[i] == 2 else ""
    return f"{model.w[i]:g} * {inner}{power}{src}"


def ground_rule_text(model: HLMRF, i: int, program) -> str:
    """Row ``i``'s rule with its substitution filled in, in the reference engine's style.

    Predicates upper-cased, constants quoted, the rule's own (unnormalised) weight. Summation
    atoms keep their ``+X``: the atoms they expand to are in :func:`describe_row`.
    """
    index = model.index
    subs = getattr(index, "substitutions", None)
    if not subs:
        raise ValueError("the model keeps no substitutions; ground it with "
                         "ground(program, store, keep_substitutions=True)")
    r = int(model.rule[i])
    variables, table = subs[r]
    row = table[int(index.row_substitution[i])]
    names = index.constants
    return substituted_rule_text(program.rules[r],
                                 {v: str(names[int(code)]) for v, code in zip(variables, row)})


def substituted_rule_text(rule, binding, upper: bool = True) -> str:
    """``rule`` with ``binding`` (variable name -> constant name) filled in, in the reference
    engine's style (predicates upper-cased unless ``upper=False``)."""
    binding = {v: Constant(str(c)) for v, c in binding.items()}
    if isinstance(rule, LogicalRule):
        body = [_lit(l, binding, upper) for l in rule.body] + [_cmp(c, binding) for c in rule.comparisons]
        head = " | ".join(_lit(l, binding, upper) for l in rule.head)
        core = f"{' & '.join(body)} -> {head}" if body else head
    else:
        terms = tuple((c, _atom(a, binding, upper)) for c, a in rule.lhs.terms)
        expr = str(LinearExpr(terms, 0.0))
        core = f"{expr} {rule.op} {_coef_text(coef_neg(rule.lhs.constant))}"
        core += "".join(" " + _cmp(c, binding) for c in rule.comparisons)
    if rule.hard:
        text = core + " ."
    else:
        text = f"{float(rule.weight)!r}: {core} ^{2 if rule.squared else 1}"
    if isinstance(rule, ArithmeticRule) and rule.filters:
        text += "".join(" " + str(_filter(f, binding, upper)) for f in rule.filters)
    return text


def _coef_text(c) -> str:
    return repr(float(c)) if isinstance(c, (int, float)) else str(c)


def _sub(t, binding):
    if isinstance(t, Variable) and not t.summation and t.name in binding:
        return binding[t.name]
    return t


def _atom(a: Atom, binding, upper: bool = True) -> Atom:
    return Atom(a.predicate.upper() if upper else a.predicate, tuple(_sub(t, binding) for t in a.args))


def _lit(l: Literal, binding, upper: bool = True) -> str:
    return str(Literal(_atom(l.atom, binding, upper), l.negated))


def _cmp(c: Comparison, binding) -> str:
    return str(Comparison(c.op, _sub(c.left, binding), _sub(c.right, binding)))


def _filter(f: FilterClause, binding, upper: bool = True) -> FilterClause:
    def walk(e):
        if isinstance(e, BoolOp):
            return BoolOp(e.op, tuple(walk(x) for x in e.items))
        if isinstance(e, Comparison):
            return replace(e, left=_sub(e.left, binding), right=_sub(e.right, binding))
        return Literal(_atom(e.atom, binding, upper), e.negated)
    return FilterClause(f.variable, walk(f.formula))


def write_ground_rules(model: HLMRF, out, limit: int | None = None, program=None) -> int:
    """Write one line per ground potential to the text stream ``out``; return how many.

    With ``program`` (and a model grounded with ``keep_substitutions=True``) each line is the
    ground rule followed by its distance form as a ``#`` comment; otherwise the distance form.
    """
    m = model.m if limit is None else min(limit, model.m)
    full = program is not None and getattr(model.index, "substitutions", None)
    for i in range(m):
        if full:
            out.write(f"{ground_rule_text(model, i, program)}   # {describe_row(model, i, False)}\n")
        else:
            out.write(describe_row(model, i) + "\n")
    return m
