"""Stage 1: the PSL rule language (AST, parser, printer). Takes text, returns values; no I/O."""
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
from hlmrf.language.parser import parse_rules

__all__ = [
    "ArithmeticRule",
    "Atom",
    "Comparison",
    "Constant",
    "LinearExpr",
    "Literal",
    "LogicalRule",
    "Program",
    "Variable",
    "parse_rules",
]
