"""Checks that need both the rules and the data (issue 12, section 1): filter clauses are checked
like the rest of a rule, and an arity that disagrees is blamed on the rule atom, with the caret,
while the message still names the facts file and line.

Blaming the rule is the choice a user finds clearest: rules are typed by hand and facts files
are usually generated, so a column count that disagrees on every line is most often a typo in
the rule; the file and line in the same message cover the other case. A single malformed line
in an otherwise consistent file stays a DataError at that line, and so does a declared arity
(``Knows/3`` in a .data file), which is typed by hand too (that message names the rule's place).
"""
import json

import pytest

from hlmrf import DataError, FactStore, RuleError, ground, load_facts, parse_rules
from hlmrf.data.descriptions import load_config, load_inputs


def _store():
    s = FactStore()
    s.add_targets("T", [("a",), ("b",)])
    s.add_observations("N", [("a",)])
    s.add_observations("S", [("a", "b")])
    return s


# --- filter clauses ---------------------------------------------------------------------------

def test_unknown_predicate_in_a_filter_is_a_located_rule_error():
    # Before: a bare KeyError('NICE').
    with pytest.raises(RuleError) as info:
        ground(parse_rules("1: T(+B) <= 1 ^2 {B: Nice(B)}", "r.psl"), _store())
    assert str(info.value).startswith("r.psl:1:22: unknown predicate Nice")
    assert "^^^^^^^" in str(info.value)


@pytest.mark.parametrize("rule, col, given", [
    ("1: T(+B) <= 1 ^2 {B: N(B, B)}", 22, "N takes 1 arguments in the data, but 2"),  # grounded silently
    ("1: T(+B) <= 1 ^2 {B: S(B)}", 22, "S takes 2 arguments in the data, but 1"),     # IndexError
])
def test_filter_atom_with_a_wrong_arity_is_a_rule_error(rule, col, given):
    with pytest.raises(RuleError, match=rf"^r.psl:1:{col}: {given}"):
        ground(parse_rules(rule, "r.psl"), _store())


def test_open_predicate_in_a_filter_is_refused_even_when_the_sum_is_empty():
    # Before: only checked while evaluating the filter, so an empty summation hid it.
    s = _store()
    s.declare("Empty", 1)
    with pytest.raises(RuleError, match=r"^r.psl:1:26: Open predicate \(T\) not allowed in filter"):
        ground(parse_rules("1: Empty(+B) <= 1 ^2 {B: T(B)}", "r.psl"), s)


def test_unbound_comparison_variable_in_a_positive_disjunction_is_a_rule_error():
    # Before: accepted, then a ValueError ('Y' is not in list) once the rule had targets.
    with pytest.raises(RuleError, match=r"^r.psl:1:12: variable Y in the comparison"):
        ground(parse_rules("1: !T(X) & (X != Y) -> N(X)", "r.psl"), _store())


# --- arities between the rules and the facts ---------------------------------------------------

def _facts(tmp_path, files):
    d = tmp_path / "facts"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_arity_typo_in_a_rule_is_a_rule_error_naming_the_file(tmp_path):
    d = _facts(tmp_path, {"knows_obs.txt": "a\tb\nb\tc\n", "knows_targets.txt": "a\tc\n"})
    prog = parse_rules("1: Knows(A, B) & Knows(B, C, D) -> Knows(A, C)", "r.psl")
    # Before: a DataError on line 1 of knows_obs.txt. Now the second use, where the typo is.
    with pytest.raises(RuleError, match=r"^r.psl:1:18: Knows is used here with 3 argument\(s\), "
                                        r"but with 2 at r.psl:1:4"):
        load_facts(d, prog)
    prog = parse_rules("1: Knows(A, B, C) -> Knows(A, B, C)", "r.psl")
    with pytest.raises(RuleError) as info:
        load_facts(d, prog)
    msg = str(info.value)
    assert msg.startswith("r.psl:1:4: Knows is used here with 3 argument(s), but its facts in ")
    assert "knows_obs.txt:1 have 2 column(s)" in msg and "^^^^" in msg


def test_filter_atom_arity_typo_is_blamed_on_the_rule_not_the_facts(tmp_path):
    d = _facts(tmp_path, {"nice_obs.txt": "a\nb\n", "t_targets.txt": "a\nb\n"})
    prog = parse_rules("1: T(+B) <= 1 ^2 {B: Nice(B, B)}", "r.psl")
    with pytest.raises(RuleError) as info:  # before: DataError nice_obs.txt:1
        load_facts(d, prog)
    assert str(info.value).startswith("r.psl:1:22: Nice is used here with 2 argument(s)")
    assert "nice_obs.txt:1 have 1 column(s)" in str(info.value)


def test_one_malformed_line_and_space_separated_files_stay_data_errors(tmp_path):
    d = _facts(tmp_path, {"knows_obs.txt": "a\tb\nb\tc\td\te\n", "knows_targets.txt": "a\tc\n"})
    prog = parse_rules("1: Knows(A, B) -> Knows(B, A)", "r.psl")
    with pytest.raises(DataError, match=r"knows_obs.txt:2: has 4 columns") as info:
        load_facts(d, prog)
    assert not isinstance(info.value, RuleError)
    d = _facts(tmp_path, {"knows_obs.txt": "a b\nb c\n"})
    with pytest.raises(DataError, match="separated by tabs") as info:
        load_facts(d, prog)
    assert not isinstance(info.value, RuleError)


def test_arity_typo_with_a_data_file_and_a_config(tmp_path):
    d = _facts(tmp_path, {"knows_obs.txt": "a\tb\n", "knows_targets.txt": "b\ta\n"})
    (tmp_path / "rules.psl").write_text("1: Knows(A, B) -> Knows(B, A, A)\n")
    (tmp_path / "m.data").write_text("observations:\n  Knows: facts/knows_obs.txt\n"
                                     "targets:\n  Knows: facts/knows_targets.txt\n")
    with pytest.raises(RuleError, match=r"rules.psl:1:19: Knows is used here with 3 argument"):
        load_inputs(tmp_path / "rules.psl", tmp_path / "m.data")
    (tmp_path / "rules2.psl").write_text("1: Knows(A, B, C) -> Knows(B, A, C)\n")
    with pytest.raises(RuleError, match=r"rules2.psl:1:4: Knows is used here with 3 argument.*"
                                        r"knows_obs.txt:1 have 2 column"):
        load_inputs(tmp_path / "rules2.psl", tmp_path / "m.data")
    with pytest.raises(RuleError, match=r"rules2.psl:1:4: Knows is used here with 3 argument"):
        load_inputs(tmp_path / "rules2.psl", d)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"rules": ["1: Knows(A, B, C) -> Knows(B, A, C)"],
                               "predicates": {"Knows": {"observations": [["a", "b"]],
                                                        "targets": ["facts/knows_targets.txt"]}}}))
    with pytest.raises(RuleError, match=r"c.json:rules:1:4: Knows is used here with 3 argument"):
        load_config(cfg)


def test_declared_arity_that_disagrees_names_the_rule(tmp_path):
    (tmp_path / "rules.psl").write_text("1: Knows(A, B) -> Knows(B, A)\n")
    (tmp_path / "m.data").write_text("predicates:\n  Knows/3: open\n")
    with pytest.raises(DataError, match=r"Knows/3 is declared with arity 3, but the rules use Knows "
                                        r"with 2 arguments \(at .*rules.psl:1:4\)"):
        load_inputs(tmp_path / "rules.psl", tmp_path / "m.data")


def test_cli_reports_an_arity_typo_at_the_rule(tmp_path, capsys):
    from hlmrf.cli.infer import main

    d = _facts(tmp_path, {"knows_obs.txt": "a\tb\n", "knows_targets.txt": "b\ta\n"})
    (tmp_path / "rules.psl").write_text("1: Knows(A, B) -> Knows(B, A, A)\n")
    assert main([str(tmp_path / "rules.psl"), str(d), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "rules.psl:1:19: Knows is used here with 3 argument(s)" in err and "^" in err
