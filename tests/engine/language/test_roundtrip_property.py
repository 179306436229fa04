"""Property: printing a parsed program and parsing it again gives the same program (AST equality
ignores spans)."""
from hypothesis import given, settings, strategies as st

from hlmrf import parse_rules
from hlmrf.testing.rule_strategies import arithmetic, logical


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(logical(), arithmetic()), min_size=1, max_size=4))
def test_print_then_parse_is_the_identity(rules):
    text = "\n".join(rules)
    try:
        program = parse_rules(text)
    except ValueError:
        return  # generated text the language rejects (e.g. a summation variable also used plainly)
    printed = str(program)
    again = parse_rules(printed)
    assert again.rules == program.rules, printed
    assert str(again) == printed
