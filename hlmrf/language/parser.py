"""Parse rules written in PSL's own syntax into the frozen AST of :mod:`hlmrf.language.ast`.

A hand-written tokenizer and recursive-descent parser: the grammar is small, and owning it gives
errors that point at the exact token (``rules.psl:7:23: expected ...`` and a caret line) without a
parser dependency. One rule per line is not required: a rule ends after its exponent, after the
hard-rule ``.``, where the next rule's weight begins, or, for a weighted rule without ``^p``, where
its expression cannot go on. Whether a rule is logical or arithmetic is decided from its first
operand, never by scanning past its end. Arithmetic expressions are parsed as general
``+ - * /`` expressions over numbers, atoms, ``|X|`` and ``@Min/@Max`` and then linearised (a
product of two atoms, or a division by an atom, is an error); every number, before and after
constant folding, must be finite. Brackets nest at most :data:`MAX_NESTING` deep and prefix
operators are read in loops, so no input meets Python's recursion limit. The reference engine's
checks on summation variables, cardinalities and filters run here. Nothing here looks at data.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hlmrf.errors import RuleSyntaxError, Span
from hlmrf.language.ast import (
    ArithmeticRule,
    Atom,
    BoolOp,
    Cardinality,
    CoefCall,
    CoefOp,
    Comparison,
    Constant,
    FilterClause,
    LinearExpr,
    Literal,
    LogicalRule,
    Program,
    Variable,
    coef_cardinalities,
    coef_neg,
)

_TOKEN_SPEC = [
    ("COMMENT", r"//[^\n]*|\#[^\n]*|/\*.*?\*/"),
    ("WS", r"[ \t\r\n]+"),
    ("NUMBER", r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"),
    ("STRING", r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""),
    ("IDENT", r"[A-Za-z_][A-Za-z0-9_]*"),
    ("OP", r"->|>>|<-|<<|<=|>=|==|!=|&&|\|\||[&|!~(),:.^=+\-*/%{}@\[\]<>]"),
]
_TOKEN_RE = re.compile("|".join(f"(?P<{n}>{p})" for n, p in _TOKEN_SPEC), re.S)
_CMP_OPS = {"!=": "!=", "-": "!=", "==": "==", "%": "%", "^": "%"}
_RELATIONS = ("=", "<=", ">=")
_CONNECTIVES = ("&", "&&", "|", "||", "->", ">>", "<-", "<<")

#: The deepest nesting of brackets (``( [ {``) in one rule; coefficient expressions built from
#: ``+ - * /`` and ``@Min/@Max`` over cardinalities nest less deep than this. Deeper input is a
#: located RuleSyntaxError: no person writes it, and the limit keeps every recursive walk of the
#: AST (printing, equality, grounding's coefficient evaluation) far from Python's recursion limit.
MAX_NESTING = 100
_LARGEST = "about 1.8e308"


class _FoldError(Exception):
    """Constant folding produced a non-finite number (``kind='finite'``) or too deep a coefficient
    expression (``kind='deep'``); the parser turns it into an error at the operator."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    start: int
    end: int
    line: int
    col: int


def _tokenize(text: str, source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text.startswith("/*", pos):
                msg = "unterminated /* comment; close it with */"
            elif text[pos] in "'\"":
                msg = "unterminated string constant; close the quote on the same line"
            else:
                msg = f"unexpected character {text[pos]!r}"
            span = Span(source, line, pos - line_start + 1, pos, pos + 1)
            raise RuleSyntaxError(msg, span, text)
        kind = m.lastgroup
        tok_text = m.group()
        if kind not in ("WS", "COMMENT"):
            toks.append(_Tok(kind, tok_text, pos, m.end(), line, pos - line_start + 1))
        nl = tok_text.count("\n")
        if nl:
            line += nl
            line_start = pos + tok_text.rfind("\n") + 1
        pos = m.end()
    toks.append(_Tok("EOF", "", n, n, line, n - line_start + 1))
    return toks


class _Parser:
    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source
        self.toks = _tokenize(text, source)
        self.i = 0
        self.depth = 0  # brackets open in the current rule
        self._splits: list[int] = []  # where the arithmetic right side could end (see _rhs)
        self._stop: int | None = None
        self._dot_error = False

    # -- token helpers -------------------------------------------------------------------------
    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def at(self, *texts: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind in ("OP",) and t.text in texts

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def span(self, tok: _Tok, end_tok: _Tok | None = None) -> Span:
        end = (end_tok or tok).end
        return Span(self.source, tok.line, tok.col, tok.start, max(end, tok.start + 1))

    def error(self, msg: str, tok: _Tok | None = None) -> RuleSyntaxError:
        tok = tok or self.peek()
        return RuleSyntaxError(msg, self.span(tok), self.text)

    def expect(self, text: str, what: str) -> _Tok:
        t = self.peek()
        if t.kind == "OP" and t.text == text:
            return self.next()
        raise self.error(f"expected {what}, found {_describe(t)}")

    def enter(self, tok: _Tok) -> None:
        """Open a bracket; nesting deeper than MAX_NESTING is an error at ``tok``."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"brackets nest deeper than {MAX_NESTING} levels here; hlmrf reads at "
                             f"most {MAX_NESTING} nested `(`, `[` or `{{` in a rule: flatten the "
                             "expression (`&` and `+` chains need no parentheses)", tok)

    def leave(self) -> None:
        self.depth -= 1

    def fold(self, tok: _Tok, fn, *args):
        """Run a constant-folding step; blame ``tok`` if it gives inf/nan or nests too deep."""
        try:
            return fn(*args)
        except _FoldError as exc:
            if exc.kind == "deep":
                raise self.error(f"this coefficient expression nests {MAX_NESTING} operations "
                                 "deep; hlmrf reads coefficient expressions less deep than "
                                 f"{MAX_NESTING} (so that printed, they stay within the bracket "
                                 "limit): simplify it", tok) from None
            what = (f"moving the right side across `{tok.text}` makes the constant"
                    if tok.text in _RELATIONS else f"`{tok.text}` makes a coefficient")
            raise self.error(f"{what} infinite or not a number (the largest double is "
                             f"{_LARGEST}); coefficients must be finite numbers: rescale the rule",
                             tok) from None

    def number(self, tok: _Tok, what: str) -> float:
        v = float(tok.text)
        if not math.isfinite(v):
            raise self.error(f"{tok.text} is too large for a double (the largest is {_LARGEST}); "
                             f"{what} must be finite numbers", tok)
        return v

    # -- rules ---------------------------------------------------------------------------------
    def program(self) -> Program:
        rules = []
        while self.peek().kind != "EOF":
            rules.append(self.rule())
        if not rules:
            raise RuleSyntaxError(
                "the rule file has no rules; a program needs at least one, e.g. "
                "`1.0: Smokes(A) -> Cancer(A) ^2` (weighted) or `Friends(A, B) + Enemies(A, B) <= 1 .` "
                "(hard)", Span(self.source, 1, 1, 0, 0), self.text)
        return Program(tuple(rules), self.source, self.text)

    def rule(self):
        first = self.peek()
        weight = None
        self.depth = 0
        if first.kind == "NUMBER" and self.at(":", k=1):
            weight = self.number(self.next(), "rule weights")
            self.next()
        elif first.kind == "OP" and first.text == "-" and self.peek(1).kind == "NUMBER" and self.at(":", k=2):
            raise self.error("rule weights must be non-negative; "
                             "negate the rule instead of its weight", first)
        start_i = self.i
        kind, sign = self._rule_kind(weight)
        if kind == "logical":
            return self.logical_rule(weight, first)
        if sign is None or self.toks[sign].line == self.toks[sign - 1].line:
            return self.arithmetic_rule(weight, first)
        # `W: Atom(...)` and then `+`/`-` at the start of a new line: either the weighted
        # arithmetic rule goes on, or the weighted logical rule `W: Atom(...)` ended and a hard
        # arithmetic rule starts. Read it as arithmetic unless that reading ends a weighted rule
        # with `.`, which only the second reading explains.
        self._dot_error = False
        try:
            return self.arithmetic_rule(weight, first)
        except RuleSyntaxError:
            if not self._dot_error:
                raise
        self.i, self.depth = start_i, 0
        return self.logical_rule(weight, first)

    def _rule_kind(self, weight):
        """Decide from the first operand whether the rule is logical or arithmetic.

        Returns ``(kind, sign)``: ``sign`` is the index of the `+`/`-` after a lone leading atom
        of a weighted rule, where a hard rule could begin instead (see :meth:`rule`). The scan
        reads one atom and the brackets around it, never past the end of the rule.
        """
        j = self.i
        toks = self.toks
        while toks[j].kind == "OP" and toks[j].text == "(":
            j += 1
        opened = j - self.i
        t = toks[j]
        if t.kind == "NUMBER" or (t.kind == "OP" and t.text in ("-", "+", "|", "@")):
            return "arithmetic", None
        if not (t.kind == "IDENT" and toks[j + 1].kind == "OP" and toks[j + 1].text == "("):
            return "logical", None  # a negation, a term comparison, or an error either parse reports
        j += 1
        depth = 0
        while True:  # skip the atom's argument list
            t = toks[j]
            if t.kind == "EOF":
                return "logical", None
            if t.kind == "OP" and t.text == "(":
                depth += 1
            elif t.kind == "OP" and t.text == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        j += 1
        while True:
            t = toks[j]
            if t.kind != "OP":
                return "logical", None
            if t.text == ")" and opened > 0:
                opened -= 1
                j += 1
                continue
            if t.text in _RELATIONS or t.text in ("*", "/"):
                return "arithmetic", None
            if t.text in ("+", "-"):
                if weight is None or opened > 0:
                    return "arithmetic", None
                return "arithmetic", j
            return "logical", None

    def _finish(self, weight, first: _Tok):
        """Parse ``^p`` or the hard-rule ``.``; return (squared, last token)."""
        t = self.peek()
        if weight is None:
            if t.kind == "OP" and t.text == ".":
                return False, self.next()
            if t.kind == "NUMBER" and t.text.startswith(".") and self.at(":", k=1):
                # `A(X) <= 1 .5: B(X)`: the hard rule's `.` and the next rule's weight `5`, not
                # the number `.5` (a rule never continues with a number after a complete term).
                dot = _Tok("OP", ".", t.start, t.start + 1, t.line, t.col)
                rest = _Tok("NUMBER", t.text[1:], t.start + 1, t.end, t.line, t.col + 1)
                self.toks[self.i:self.i + 1] = [dot, rest]
                return False, self.next()
            if t.kind == "OP" and t.text == "^":
                raise self.error("a hard constraint (no weight) takes no exponent; "
                                 "give the rule a weight, e.g. `1.0: ...`, or drop the `^`", t)
            raise self.error(f"expected `.` to end the unweighted (hard) rule, found {_describe(t)}; "
                             "weighted rules start with `WEIGHT:`")
        if t.kind == "OP" and t.text == "^":
            self.next()
            p = self.peek()
            if p.kind != "NUMBER" or p.text not in ("1", "2", "1.0", "2.0"):
                raise self.error(f"the exponent must be 1 or 2, found {_describe(p)}; "
                                 "write `^1` (linear) or `^2` (squared)", p)
            self.next()
            return p.text.startswith("2"), p
        if t.kind == "OP" and t.text == ".":
            self._dot_error = True
            raise self.error("a weighted rule cannot end with `.` (that marks a hard constraint); "
                             "drop the weight for a hard rule or drop the `.`", t)
        prev = self.toks[self.i - 1]
        return False, prev

    # -- logical rules -------------------------------------------------------------------------
    def logical_rule(self, weight, first: _Tok) -> LogicalRule:
        left = self.bool_expr()
        arrow = self.peek()
        if arrow.kind == "OP" and arrow.text in ("->", ">>", "<-", "<<"):
            self.next()
            right = self.bool_expr()
            body_e, head_e = (left, right) if arrow.text in ("->", ">>") else (right, left)
            body, comparisons = self._conjunction(body_e)
            head = self._disjunction(head_e, "head")
        else:
            if isinstance(left, BoolOp) and left.op == "&":
                raise self.error("expected `->` or `<-` after a conjunction "
                                 f"(a rule without an arrow is a disjunction), found {_describe(arrow)}")
            body, comparisons = (), ()
            head = self._disjunction(left, "disjunction")
        if self.at("{"):
            raise self.error("filter clauses `{...}` restrict summation variables (`+X`) of "
                             "arithmetic rules; a logical rule takes its conditions in the body")
        squared, last = self._finish(weight, first)
        return LogicalRule(tuple(body), tuple(head), tuple(comparisons), weight, squared,
                           self.span(first, last), self.text[first.start:last.end].strip())

    def _conjunction(self, e):
        """A rule body: literals and comparisons joined by `&` (parentheses flattened)."""
        lits, cmps = [], []

        def walk(x):
            if isinstance(x, BoolOp):
                if x.op == "|":
                    raise RuleSyntaxError(
                        "a disjunction in a rule body is not a single clause, and PSL grounds "
                        "clauses only (the reference engine rejects it too); split the rule into "
                        "one rule per disjunct: `A | B -> C` becomes `A -> C` and `B -> C`",
                        self._bool_span(x), self.text)
                for i in x.items:
                    walk(i)
            elif isinstance(x, Comparison):
                cmps.append(x)
            else:
                lits.append(x)
        walk(e)
        return lits, cmps

    def _disjunction(self, e, where: str):
        """A rule head (or an arrowless rule): literals joined by `|` (parentheses flattened)."""
        lits = []
        ops = set()

        def collect(x):
            if isinstance(x, BoolOp):
                ops.add(x.op)
                for i in x.items:
                    collect(i)
        collect(e)

        def walk(x):
            if isinstance(x, BoolOp):
                if x.op == "&":
                    mixed = "|" in ops
                    msg = ("a rule head cannot mix `&` and `|`; " if mixed else
                           "a conjunction in a rule head is not a single clause, and PSL grounds "
                           "clauses only (the reference engine rejects it too); ")
                    raise RuleSyntaxError(
                        msg + "write one rule per head atom: `A -> B & C` becomes `A -> B` and "
                        "`A -> C`", self._bool_span(x), self.text)
                for i in x.items:
                    walk(i)
            elif isinstance(x, Comparison):
                hint = ("term comparisons belong in the rule body" if where == "head" else
                        "a term comparison in a rule without an arrow would be a disjunct, not a "
                        "condition; write the rule with a body, e.g. `A(X, Y) & (X != Y) -> B(X, Y)`")
                raise RuleSyntaxError(hint, x.span, self.text)
            else:
                lits.append(x)
        walk(e)
        return lits

    def _bool_span(self, x):
        while isinstance(x, BoolOp):
            x = x.items[0]
        return x.span

    def bool_expr(self):
        """Literals and comparisons joined by `&`/`|`, with parentheses; `&` binds tighter."""
        items = [self.bool_conj()]
        # `| X |` cannot continue a formula: it is the cardinality that starts the next rule.
        while self.at("|", "||") and not self._at_cardinality():
            self.next()
            items.append(self.bool_conj())
        return items[0] if len(items) == 1 else BoolOp("|", tuple(items))

    def bool_conj(self):
        items = [self.bool_value()]
        while self.at("&", "&&"):
            self.next()
            items.append(self.bool_value())
        return items[0] if len(items) == 1 else BoolOp("&", tuple(items))

    def bool_value(self):
        negations = []
        while self.at("!", "~"):  # a loop, not recursion: `!!!!A(X)` may be long
            negations.append(self.next())
        inner = self.bool_operand()
        if not negations:
            return inner
        t = negations[-1]
        if isinstance(inner, Comparison):
            raise self.error("a term comparison cannot be negated; use the opposite operator", t)
        if isinstance(inner, BoolOp):
            raise self.error("negation applies to a single atom; push it inside "
                             "(`!(A & B)` is `!A | !B`)", t)
        negated = inner.negated != (len(negations) % 2 == 1)
        return Literal(inner.atom, negated, self.span(negations[0]))

    def bool_operand(self):
        t = self.peek()
        if t.kind == "OP" and t.text == "(":
            a, op = self.peek(1), self.peek(2)
            if a.kind in ("IDENT", "STRING") and op.kind == "OP" and op.text in _CMP_OPS and \
                    self.peek(4).kind == "OP" and self.peek(4).text == ")":
                return self.comparison()
            self.enter(self.next())
            inner = self.bool_expr()
            self.expect(")", "`)`")
            self.leave()
            return inner
        if t.kind in ("IDENT", "STRING") and self.peek(1).kind == "OP" and self.peek(1).text in _CMP_OPS \
                and not (t.kind == "IDENT" and self.at("(", k=1)):
            return self.bare_comparison()
        if t.kind == "IDENT":
            return Literal(self.atom(), False, self.span(t))
        if t.kind == "OP" and t.text == "{":
            raise self.error("filter clauses `{...}` belong after an arithmetic rule with a "
                             "summation variable", t)
        raise self.error(f"expected an atom such as `Friends(A, B)`, found {_describe(t)}", t)

    def comparison(self) -> Comparison:
        open_tok = self.next()
        left = self.term()
        op_tok = self.next()
        right = self.term()
        self.expect(")", "`)` to close the term comparison")
        return Comparison(_CMP_OPS[op_tok.text], left, right, self.span(open_tok, self.toks[self.i - 1]))

    def bare_comparison(self) -> Comparison:
        first = self.peek()
        left = self.term()
        op_tok = self.next()
        right = self.term()
        return Comparison(_CMP_OPS[op_tok.text], left, right, self.span(first, self.toks[self.i - 1]))

    def atom(self, summation: bool = False) -> Atom:
        name = self.next()
        if not self.at("("):
            raise self.error(f"expected `(` after predicate name {name.text!r}; "
                             "variables may only appear as arguments of atoms", self.peek())
        self.next()
        args = []
        while True:
            if self.at("+"):
                plus = self.next()
                if not summation:
                    raise self.error("summation variables (`+X`) belong in arithmetic rules "
                                     "(`Friends(A, +B) <= 1 .`); a logical rule cannot sum", plus)
                v = self.peek()
                if v.kind != "IDENT":
                    raise self.error(f"expected a variable name after `+`, found {_describe(v)}", v)
                self.next()
                args.append(Variable(v.text, self.span(plus, v), summation=True))
            else:
                args.append(self.term())
            if self.at(","):
                self.next()
                continue
            close = self.expect(")", "`,` or `)` in the argument list")
            break
        return Atom(name.text, tuple(args), self.span(name, close))

    def term(self):
        t = self.next()
        if t.kind == "IDENT":
            return Variable(t.text, self.span(t))
        if t.kind == "STRING":
            body = t.text[1:-1]
            body = re.sub(r"\\(.)", r"\1", body)
            return Constant(body, self.span(t))
        if t.kind == "NUMBER":
            raise self.error(f"constants must be quoted, e.g. '{t.text}'", t)
        raise self.error(f"expected a variable or a quoted constant, found {_describe(t)}", t)

    # -- arithmetic ----------------------------------------------------------------------------
    def arithmetic_rule(self, weight, first: _Tok) -> ArithmeticRule:
        lhs = self.lin_sum()
        op_tok = self.peek()
        if not (op_tok.kind == "OP" and op_tok.text in _RELATIONS):
            raise self.error(f"expected `=`, `<=` or `>=` in the arithmetic rule, found "
                             f"{_describe(op_tok)}", op_tok)
        self.next()
        rhs = self._rhs(weight)
        comparisons, before = [], []
        while self._at_comparison():
            before.append(self.i)
            comparisons.append(self.comparison())
        if comparisons and self._at_connective():
            # `1: A(X) <= B(X)` and then `(X != Y) & C(X) -> D(X) .`: the last comparison starts
            # the next (logical) rule; an arithmetic rule never continues with `&` or an arrow.
            self.i = before[-1]
            comparisons.pop()
        if self.at(*_RELATIONS):
            raise self.error(f"a second `{self.peek().text}`: an arithmetic rule compares its two "
                             "sides once; write a range such as `0.2 <= A(X) <= 0.8` as two rules, "
                             "`A(X) >= 0.2` and `A(X) <= 0.8`", self.peek())
        filters = self.filter_clauses()
        terms = tuple(lhs.terms) + tuple((self.fold(op_tok, _checked, coef_neg(c)), a)
                                         for c, a in rhs.terms)  # printed as they are
        if not terms:
            raise self.error("an arithmetic rule needs at least one atom", first)
        squared, last = self._finish(weight, first)
        more = self.filter_clauses()
        if more:
            filters += more
        if filters or more:
            last = self.toks[self.i - 1]
        const = self.fold(op_tok, _coef_add, lhs.constant, coef_neg(rhs.constant))
        self.fold(op_tok, _checked, coef_neg(const))  # printed on the right, negated
        rule = ArithmeticRule(LinearExpr(terms, const), op_tok.text, tuple(comparisons), weight,
                              squared, self.span(first, last),
                              self.text[first.start:last.end].strip(), tuple(filters))
        self._validate_arithmetic(rule)
        return rule

    def _rhs(self, weight):
        """The right side of an arithmetic rule, ending where the next rule begins.

        A weighted rule without ``^p`` can be followed by a hard rule that starts like a
        continuation of this side: `1: A(X) <= 1` then `B(X) <= 1 .` reads as the juxtaposition
        `1 B(X)`, and `- B(X) <= 1 .` as a subtraction. A rule has one relation, and a weighted
        rule no `.`, so when the side is followed by a relation, an arrow, `&`, `|` (or by `.` in a
        weighted rule), the next rule began at one of the places recorded while parsing it (a
        juxtaposed atom or a `+`/`-` outside brackets): the first one that starts a line, else the
        first.
        """
        start = self.i
        self._splits = []
        rhs = self.lin_sum()
        if self._splits and (self.at(*_RELATIONS) or self._at_connective()
                             or (weight is not None and self.at("."))):
            on_new_line = [k for k in self._splits if self.toks[k].line > self.toks[k - 1].line]
            self._stop = (on_new_line or self._splits)[0]
            self.i = start
            rhs = self.lin_sum()
            self._stop = None
        self._splits = []
        return rhs

    def _at_connective(self) -> bool:
        """`&`, `|` or an arrow follows (but not `|X|`, a cardinality)."""
        return self.at(*_CONNECTIVES) and not self._at_cardinality()

    def _at_cardinality(self) -> bool:
        return self.at("|") and self.peek(1).kind == "IDENT" and self.at("|", k=2)

    def _at_comparison(self) -> bool:
        """``(term op term)`` follows: a term comparison after an arithmetic rule."""
        a, op, b = self.peek(1), self.peek(2), self.peek(3)
        return (self.at("(") and a.kind in ("IDENT", "STRING") and op.kind == "OP"
                and op.text in _CMP_OPS and b.kind in ("IDENT", "STRING") and self.at(")", k=4))

    def filter_clauses(self):
        out = []
        while self.at("{"):
            open_tok = self.next()
            self.enter(open_tok)
            v = self.peek()
            if v.kind != "IDENT":
                raise self.error(f"expected the summation variable a filter restricts, e.g. "
                                 f"`{{B: Nice(B)}}`, found {_describe(v)}", v)
            self.next()
            self.expect(":", "`:` after the filter's variable")
            formula = self.bool_expr()
            close = self.expect("}", "`}` to close the filter clause")
            self.leave()
            out.append(FilterClause(v.text, formula, self.span(open_tok, close)))
        return out

    def _validate_arithmetic(self, rule: ArithmeticRule) -> None:
        """The reference engine's checks on summation variables, cardinalities and filters."""
        seen: dict[str, object] = {}
        plain: dict[str, object] = {}
        for atom in rule.atoms:
            for arg in atom.args:
                if isinstance(arg, Variable) and arg.summation:
                    if arg.name in seen:
                        raise RuleSyntaxError(
                            f"summation variable +{arg.name} is used twice; each summation variable "
                            f"may appear once per rule: rename one (e.g. +{arg.name}2)",
                            arg.span, self.text)
                    seen[arg.name] = arg
                elif isinstance(arg, Variable):
                    plain.setdefault(arg.name, arg)
        for name, arg in seen.items():
            if name in plain:
                raise RuleSyntaxError(
                    f"{name} is a summation variable (+{name}) and an ordinary variable in the same "
                    f"rule; rename one of them", plain[name].span, self.text)
        coefs = [c for c, _ in rule.lhs.terms] + [rule.lhs.constant]
        for c in coefs:
            for card in coef_cardinalities(c):
                if card.variable not in seen:
                    raise RuleSyntaxError(
                        f"|{card.variable}| takes the cardinality of a summation variable, but "
                        f"{card.variable} is not one; write +{card.variable} in a summation atom "
                        f"(e.g. `P(A, +{card.variable})`) or drop the |{card.variable}|",
                        card.span, self.text)
        done = set()
        for f in rule.filters:
            if f.variable not in seen:
                raise RuleSyntaxError(
                    f"the filter's variable {f.variable} is not a summation variable of the rule; "
                    f"filters restrict summations: write +{f.variable} in an atom or filter on one "
                    f"of: {', '.join(sorted(seen)) or 'none (the rule has no +X)'}", f.span, self.text)
            if f.variable in done:
                raise RuleSyntaxError(f"two filter clauses restrict {f.variable}; join them with `&`",
                                      f.span, self.text)
            done.add(f.variable)
            for a in _filter_terms(f.formula):
                if isinstance(a, Variable) and a.name != f.variable and a.name not in plain:
                    raise RuleSyntaxError(
                        f"variable {a.name} in the filter of {f.variable} is neither {f.variable} nor "
                        "a variable of the rule's atoms; filters may only use those",
                        a.span or f.span, self.text)

    def lin_sum(self):
        """A linear expression, as ``_Lin`` (terms and constant), with `+` and `-`."""
        acc = self.lin_product()
        while self.at("+", "-") and self.i != self._stop:
            if self.depth == 0:
                self._splits.append(self.i)
            op = self.next()
            rhs = self.lin_product()
            if op.text == "-":
                rhs = self.fold(op, rhs.scale, -1.0)
            self.fold(op, acc.add, rhs)
        return acc

    def lin_product(self):
        acc = self.lin_unary()
        while True:
            if self.at("*"):
                tok = self.next()
                rhs = self.lin_unary()
                acc = self._mul(acc, rhs, tok)
            elif self.at("/"):
                tok = self.next()
                rhs = self.lin_unary()
                if rhs.terms:
                    raise self.error("cannot divide by an atom: the rule would not be linear; "
                                     "divide by a number or a coefficient such as |B|", tok)
                if isinstance(rhs.constant, (int, float)) and rhs.constant == 0:
                    raise self.error("division by zero in a coefficient", tok)
                acc = self.fold(tok, acc.divide, rhs.constant)
            elif acc.is_constant() and self.peek().kind == "IDENT" and not self.at("(", k=0) \
                    and self.i != self._stop:
                # PSL allows `2 Friends(A, B)`: a coefficient directly before its atom.
                if self.depth == 0:
                    self._splits.append(self.i)
                tok = self.peek()
                rhs = self.lin_unary()
                acc = self._mul(acc, rhs, tok)
            else:
                return acc

    def _mul(self, a, b, tok):
        if a.terms and b.terms:
            raise self.error("a product of two atoms is not linear; arithmetic rules take "
                             "sums of coefficient * atom", tok)
        if a.terms:
            return self.fold(tok, a.scale, b.constant)
        return self.fold(tok, b.scale, a.constant)

    def lin_unary(self):
        negate = False
        sign = None
        while True:  # a loop, not recursion: `- - - A(X)` may be long
            if self.at("-"):
                sign = self.next()
                negate = not negate
            elif self.at("+") and self.peek(1).kind != "IDENT":
                self.next()
            else:
                break
        value = self.lin_primary()
        return self.fold(sign, value.scale, -1.0) if negate else value

    def lin_primary(self):
        t = self.peek()
        if t.kind == "NUMBER":
            self.next()
            return _Lin([], self.number(t, "coefficients"))
        if t.kind == "IDENT":
            atom = self.atom(summation=True)
            return _Lin([(1.0, atom)], 0.0)
        if t.kind == "OP" and t.text == "(":
            self.enter(self.next())
            inner = self.lin_sum()
            self.expect(")", "`)`")
            self.leave()
            return inner
        if t.kind == "OP" and t.text == "|":
            self.next()
            v = self.peek()
            if v.kind != "IDENT":
                raise self.error(f"expected a summation variable inside `|...|`, found {_describe(v)}", v)
            self.next()
            close = self.expect("|", "`|` to close the cardinality")
            return _Lin([], Cardinality(v.text, self.span(t, close)))
        if t.kind == "OP" and t.text == "@":
            self.next()
            name = self.peek()
            fn = name.text.capitalize() if name.kind == "IDENT" else ""
            if fn not in ("Min", "Max"):
                raise self.error(f"unknown coefficient function @{name.text}; use @Min[a, b] or "
                                 "@Max[a, b]", name)
            self.next()
            if not self.at("[", "("):
                raise self.error(f"expected `[` after @{fn}", self.peek())
            opener = self.next()
            self.enter(opener)
            closer = "]" if opener.text == "[" else ")"
            a = self.lin_sum()
            self.expect(",", "`,` between the two arguments")
            b = self.lin_sum()
            self.expect(closer, f"`{closer}` to close @{fn}")
            self.leave()
            if a.terms or b.terms:
                raise self.error(f"@{fn} takes coefficients (numbers, |X|), not atoms", name)
            return _Lin([], self.fold(name, _coef_call, fn, a.constant, b.constant))
        raise self.error(f"expected a number or an atom, found {_describe(t)}", t)


class _Lin:
    """A linear expression while parsing: ``[(coef, atom), ...]`` and a constant.

    :meth:`add` extends in place, so a sum of n atoms costs O(n), not O(n^2).
    """

    def __init__(self, terms, constant):
        self.terms = list(terms)
        self.constant = constant

    def is_constant(self) -> bool:
        return not self.terms

    def add(self, other: "_Lin") -> "_Lin":
        self.constant = _coef_add(self.constant, other.constant)
        self.terms.extend(other.terms)
        return self

    def scale(self, k) -> "_Lin":
        return _Lin([(_coef_mul(k, c), a) for c, a in self.terms], _coef_mul(k, self.constant))

    def divide(self, k) -> "_Lin":
        return _Lin([(_coef_div(c, k), a) for c, a in self.terms], _coef_div(self.constant, k))


def _is_num(c) -> bool:
    return isinstance(c, (int, float))


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise _FoldError("finite")
    return x + 0.0  # no -0.0


def _coef_depth(c) -> int:
    """How deep a coefficient expression nests, cached on each node (computed without recursion)."""
    if not isinstance(c, (CoefOp, CoefCall)):
        return 0
    stack = [c]
    while stack:
        node = stack[-1]
        if "_depth" in node.__dict__:
            stack.pop()
            continue
        kids = (node.left, node.right) if isinstance(node, CoefOp) else node.args
        todo = [k for k in kids if isinstance(k, (CoefOp, CoefCall)) and "_depth" not in k.__dict__]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        depth = 1 + max(k.__dict__["_depth"] if isinstance(k, (CoefOp, CoefCall)) else 0 for k in kids)
        object.__setattr__(node, "_depth", depth)  # not a field: equality and printing ignore it
    return c.__dict__["_depth"]


def _checked(node):
    # Printing wraps each operation in brackets, and a rule's constant in one more (`-1 * ...`):
    # below MAX_NESTING, whatever the parser accepts prints as text it accepts again.
    if _coef_depth(node) >= MAX_NESTING:
        raise _FoldError("deep")
    return node


def _coef_add(a, b):
    if _is_num(a) and _is_num(b):
        return _finite(float(a) + float(b))
    if _is_num(b) and b == 0:
        return a
    if _is_num(a) and a == 0:
        return b
    return _checked(CoefOp("+", a, b))


def _coef_mul(k, c):
    if _is_num(k) and _is_num(c):
        return _finite(float(k) * float(c))
    if (_is_num(k) and k == 0) or (_is_num(c) and c == 0):
        return 0.0
    if _is_num(k) and k == 1:
        return c
    if _is_num(c) and c == 1:
        return k
    if _is_num(k) and k == -1:
        return coef_neg(c)
    if _is_num(c) and c == -1:
        return coef_neg(k)
    return _checked(CoefOp("*", k, c))


def _coef_div(c, k):
    if _is_num(c) and _is_num(k):
        return _finite(float(c) / float(k))
    if _is_num(k) and k == 1:
        return c
    if _is_num(c) and c == 0:
        return 0.0
    return _checked(CoefOp("/", c, k))


def _coef_call(fn, a, b):
    if _is_num(a) and _is_num(b):
        return float(min(a, b) if fn == "Min" else max(a, b))
    return _checked(CoefCall(fn, (a, b)))


def _filter_terms(e):
    if isinstance(e, Literal):
        return e.atom.args
    if isinstance(e, Comparison):
        return (e.left, e.right)
    return tuple(t for i in e.items for t in _filter_terms(i))


def _describe(t: _Tok) -> str:
    return "end of input" if t.kind == "EOF" else f"`{t.text}`"


def parse_rules(text: str, source: str = "<rules>") -> Program:
    """Parse PSL rule text.

    Parameters
    ----------
    text : the rules, in PSL's syntax.
    source : the name used in error messages (usually the file path).

    Raises
    ------
    RuleSyntaxError : ``source:line:col: message`` plus the line and a caret.
    """
    return _Parser(text, source).program()
