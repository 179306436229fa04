"""Parse rules written in PSL's own syntax into the frozen AST of :mod:`hlmrf.language.ast`.

A hand-written tokenizer and recursive-descent parser: the grammar is small, and owning it gives
errors that point at the exact token (``rules.psl:7:23: expected ...`` and a caret line) without a
parser dependency. One rule per line is not required: a rule ends after its exponent, after the
hard-rule ``.``, or where the next rule's weight begins. The summation atoms and filter clauses of
arithmetic rules are recognised and rejected as "not yet supported"; nothing here looks at data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from hlmrf.errors import RuleSyntaxError, Span
from hlmrf.language.ast import (
    ArithmeticRule,
    Atom,
    Comparison,
    Constant,
    LinearExpr,
    Literal,
    LogicalRule,
    Program,
    Variable,
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

    # -- rules ---------------------------------------------------------------------------------
    def program(self) -> Program:
        rules = []
        while self.peek().kind != "EOF":
            rules.append(self.rule())
        return Program(tuple(rules), self.source, self.text)

    def rule(self):
        first = self.peek()
        weight = None
        if first.kind == "NUMBER" and self.at(":", k=1):
            weight = float(self.next().text)
            self.next()
        elif first.kind == "OP" and first.text == "-" and self.peek(1).kind == "NUMBER" and self.at(":", k=2):
            raise self.error("rule weights must be non-negative; "
                             "negate the rule instead of its weight", first)
        start_i = self.i
        if self._is_arithmetic():
            rule = self.arithmetic_rule(weight, first)
        else:
            self.i = start_i
            rule = self.logical_rule(weight, first)
        return rule

    def _is_arithmetic(self) -> bool:
        """Scan ahead to the end of this rule: an `=`, `<=` or `>=` at depth 0 makes it arithmetic."""
        depth = 0
        j = self.i
        while True:
            t = self.toks[j]
            if t.kind == "EOF":
                return False
            if t.kind == "OP":
                if t.text in "([{":
                    depth += 1
                elif t.text in ")]}":
                    depth -= 1
                elif depth == 0 and t.text in ("=", "<=", ">="):
                    return True
                elif depth == 0 and t.text in ("->", ">>", "<-", "<<", "&", "&&", "|", "||"):
                    return False
                elif depth == 0 and t.text in (".", "^"):
                    return False
            if t.kind == "NUMBER" and self.toks[j + 1].kind == "OP" and self.toks[j + 1].text == ":" and j > self.i:
                return False
            j += 1

    def _finish(self, weight, first: _Tok):
        """Parse ``^p`` or the hard-rule ``.``; return (squared, last token)."""
        t = self.peek()
        if weight is None:
            if t.kind == "OP" and t.text == ".":
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
                raise self.error(f"the exponent must be 1 or 2, found {_describe(p)}", p)
            self.next()
            return p.text.startswith("2"), p
        if t.kind == "OP" and t.text == ".":
            raise self.error("a weighted rule cannot end with `.` (that marks a hard constraint); "
                             "drop the weight for a hard rule or drop the `.`", t)
        prev = self.toks[self.i - 1]
        return False, prev

    def logical_rule(self, weight, first: _Tok) -> LogicalRule:
        left, left_cmps, left_ops = self.formula()
        arrow = self.peek()
        if arrow.kind == "OP" and arrow.text in ("->", ">>", "<-", "<<"):
            self.next()
            right, right_cmps, right_ops = self.formula()
            if arrow.text in ("->", ">>"):
                body, body_cmps, body_ops, head, head_cmps, head_ops = (
                    left, left_cmps, left_ops, right, right_cmps, right_ops)
            else:
                body, body_cmps, body_ops, head, head_cmps, head_ops = (
                    right, right_cmps, right_ops, left, left_cmps, left_ops)
            if "|" in body_ops:
                raise self.error("a disjunction in a rule body is not yet supported; "
                                 "split the rule into one rule per disjunct", arrow)
            if "&" in head_ops and "|" in head_ops:
                raise self.error("a rule head cannot mix `&` and `|`", arrow)
            if "&" in head_ops:
                raise self.error("a conjunction in a rule head is not yet supported; "
                                 "write one rule per head atom", arrow)
            if head_cmps:
                raise RuleSyntaxError("term comparisons belong in the rule body",
                                      head_cmps[0].span, self.text)
            comparisons = body_cmps
        else:
            if "&" in left_ops:
                raise self.error("expected `->` or `<-` after a conjunction "
                                 f"(a rule without an arrow is a disjunction), found {_describe(arrow)}")
            body, head, comparisons = (), left, left_cmps
        if not head and not body:
            raise self.error("a rule needs at least one atom", first)
        squared, last = self._finish(weight, first)
        return LogicalRule(tuple(body), tuple(head), tuple(comparisons), weight, squared,
                           self.span(first, last), self.text[first.start:last.end].strip())

    def formula(self):
        """A flat sequence of literals and comparisons joined by `&` or `|`."""
        lits: list[Literal] = []
        cmps: list[Comparison] = []
        ops: set[str] = set()
        while True:
            item = self.literal_or_comparison()
            (cmps if isinstance(item, Comparison) else lits).append(item)
            t = self.peek()
            if t.kind == "OP" and t.text in ("&", "&&"):
                ops.add("&")
                self.next()
            elif t.kind == "OP" and t.text in ("|", "||"):
                ops.add("|")
                self.next()
            else:
                break
        return lits, cmps, ops

    def literal_or_comparison(self):
        t = self.peek()
        if t.kind == "OP" and t.text in ("!", "~"):
            self.next()
            inner = self.literal_or_comparison()
            if isinstance(inner, Comparison):
                raise self.error("a term comparison cannot be negated; use the opposite operator", t)
            return Literal(inner.atom, not inner.negated, self.span(t))
        if t.kind == "OP" and t.text == "(":
            a, op = self.peek(1), self.peek(2)
            if a.kind in ("IDENT", "STRING") and op.kind == "OP" and op.text in _CMP_OPS and not (
                    a.kind == "IDENT" and self.at("(", k=2)):
                return self.comparison()
            self.next()
            inner = self.literal_or_comparison()
            if self.at("&", "&&", "|", "||"):
                raise self.error("parenthesised sub-formulas are not yet supported; "
                                 "write the rule without the inner parentheses")
            self.expect(")", "`)`")
            return inner
        if t.kind == "IDENT":
            return Literal(self.atom(), False, self.span(t))
        if t.kind == "OP" and t.text == "{":
            raise self.error("filter clauses `{...}` are not yet supported", t)
        raise self.error(f"expected an atom such as `Friends(A, B)`, found {_describe(t)}", t)

    def comparison(self) -> Comparison:
        open_tok = self.next()
        left = self.term()
        op_tok = self.next()
        right = self.term()
        self.expect(")", "`)` to close the term comparison")
        return Comparison(_CMP_OPS[op_tok.text], left, right, self.span(open_tok, self.toks[self.i - 1]))

    def atom(self) -> Atom:
        name = self.next()
        if not self.at("("):
            raise self.error(f"expected `(` after predicate name {name.text!r}; "
                             "variables may only appear as arguments of atoms", self.peek())
        self.next()
        args = []
        while True:
            if self.at("+"):
                raise self.error("summation atoms (`+X` arguments) are not yet supported", self.peek())
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
        lhs = self.sum_expr()
        op_tok = self.next()
        rhs = self.sum_expr()
        comparisons = []
        while self.at("("):
            comparisons.append(self.comparison())
        if self.at("{"):
            raise self.error("filter clauses `{...}` are not yet supported", self.peek())
        terms = tuple(lhs.terms) + tuple((-c, a) for c, a in rhs.terms)
        if not terms:
            raise self.error("an arithmetic rule needs at least one atom", first)
        expr = LinearExpr(terms, lhs.constant - rhs.constant)
        squared, last = self._finish(weight, first)
        return ArithmeticRule(expr, op_tok.text, tuple(comparisons), weight, squared,
                              self.span(first, last), self.text[first.start:last.end].strip())

    def sum_expr(self) -> LinearExpr:
        terms: list[tuple[float, Atom]] = []
        const = 0.0
        sign = 1.0
        if self.at("-"):
            self.next()
            sign = -1.0
        elif self.at("+"):
            self.next()
        while True:
            coef, atom = self.product()
            if atom is None:
                const += sign * coef
            else:
                terms.append((sign * coef, atom))
            if self.at("+"):
                sign = 1.0
            elif self.at("-"):
                sign = -1.0
            else:
                break
            self.next()
        return LinearExpr(tuple(terms), const)

    def product(self):
        t = self.peek()
        if t.kind == "NUMBER":
            coef = float(self.next().text)
            if self.at("*"):
                self.next()
                if self.peek().kind != "IDENT":
                    raise self.error("expected an atom after `*`")
                return coef, self.atom()
            if self.at("/"):
                raise self.error("coefficient expressions with `/` are not yet supported", self.peek())
            return coef, None
        if t.kind == "IDENT":
            atom = self.atom()
            if self.at("*", "/"):
                raise self.error("write coefficients before the atom, e.g. `0.5 * P(A)`", self.peek())
            return 1.0, atom
        if t.kind == "OP" and t.text == "|":
            raise self.error("cardinality `|X|` is not yet supported", t)
        if t.kind == "OP" and t.text == "@":
            raise self.error("coefficient functions (`@Min`, `@Max`) are not yet supported", t)
        raise self.error(f"expected a number or an atom, found {_describe(t)}", t)


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
