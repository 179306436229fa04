"""Facts directories: file naming, values, and errors that name the file and line."""
import numpy as np
import pytest

import hlmrf
from hlmrf import DataError
from hlmrf.data.loader import load_facts


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)


def test_loads_psl_examples_naming(tmp_path):
    write(tmp_path, "knows_obs.txt", "a\tb\t1.0\nb\tc\t0.25\n")
    write(tmp_path, "Knows_targets.tsv", "a\tc\n")
    write(tmp_path, "KNOWS_truth.txt", "a\tc\n")
    write(tmp_path, "lived_obs.txt", "a\tparis\nb\tparis\n")
    write(tmp_path, "notes.md", "ignored")
    s = load_facts(tmp_path, {"KNOWS": 2, "LIVED": 2})
    k = s.get("knows")
    assert k.open and len(k.obs_args) == 2 and k.obs_values.tolist() == [1.0, 0.25]
    assert k.truth_values.tolist() == [1.0]  # absent value column means 1.0
    assert not s.get("Lived").open and s.get("LIVED").obs_values.tolist() == [1.0, 1.0]


def test_numeric_arguments_use_the_rules_arity(tmp_path):
    write(tmp_path, "edge_obs.txt", "0\t1\n1\t2\n")
    s = load_facts(tmp_path, {"EDGE": 2})
    assert s.get("Edge").obs_args.shape == (2, 2) and s.get("Edge").obs_values.tolist() == [1, 1]


@pytest.mark.parametrize("content, line, words", [
    ("a\tb\t1.0\nb\tc\t1.5\n", 2, "outside [0, 1]"),
    ("a\tb\nb\tc\td\te\n", 2, "has 4 columns, expected 2 or 3"),
    ("a\tb\nb\tc\tx\n", 2, "is not a number"),
    ("a\tb\na\tb\t0.5\n", 2, "repeats the atom of line 1"),
    ("a b\n", 1, "separated by tabs"),
])
def test_bad_lines_name_file_and_line(tmp_path, content, line, words):
    write(tmp_path, "knows_obs.txt", content)
    with pytest.raises(DataError) as info:
        load_facts(tmp_path, {"KNOWS": 2})
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'knows_obs.txt'}:{line}: "), msg
    assert words in msg


def test_target_also_observed_is_an_error(tmp_path):
    write(tmp_path, "knows_obs.txt", "a\tb\n")
    write(tmp_path, "knows_targets.txt", "a\tb\n")
    with pytest.raises(DataError, match="either observed or a target"):
        load_facts(tmp_path, {"KNOWS": 2})


def test_not_a_directory(tmp_path):
    with pytest.raises(DataError, match="is not a directory"):
        load_facts(tmp_path / "missing")


def test_programmatic_store_matches_files(examples):
    program = hlmrf.load_rules(examples / "smokers" / "rules.psl")
    from_files = hlmrf.infer(program, hlmrf.load_facts(examples / "smokers" / "facts", program))
    store = hlmrf.FactStore()
    store.add_observations("Friends", [("Anna", "Bob"), ("Anna", "Edward"), ("Anna", "Frank"),
                                       ("Edward", "Frank"), ("Gary", "Helen")])
    store.add_observations("Smokes", [("Anna",), ("Edward",)])
    store.add_targets("Smokes", [("Bob",), ("Frank",), ("Gary",), ("Helen",)])
    store.add_targets("Cancer", [(x,) for x in ["Anna", "Bob", "Edward", "Frank", "Gary", "Helen"]])
    by_hand = hlmrf.infer(program, store)
    for pred in ("Smokes", "Cancer"):
        a, b = from_files.values(pred), by_hand.values(pred)
        assert a.keys() == b.keys()
        assert max(abs(a[k] - b[k]) for k in a) < 1e-6


def test_store_rejects_values_outside_unit_interval():
    with pytest.raises(DataError, match="outside"):
        hlmrf.FactStore().add_observations("P", [("a", 1.5)], arity=1)


def test_integer_coded_atoms_match_string_rows():
    import hlmrf

    program = hlmrf.parse_rules("1: Friends(A, B) & Smokes(A) -> Smokes(B) ^2\n0.1: !Smokes(X) ^2")
    by_rows = hlmrf.FactStore()
    by_rows.add_observations("Friends", [("a", "b"), ("b", "c")])
    by_rows.add_observations("Smokes", [("a", 0.8)])
    by_rows.add_targets("Smokes", [("b",), ("c",)])
    by_codes = hlmrf.FactStore()
    a, b, c = (by_codes.constants.intern(x) for x in "abc")
    by_codes.add_observation_codes("Friends", np.array([[a, b], [b, c]]))
    by_codes.add_observation_codes("Smokes", np.array([[a]]), [0.8])
    by_codes.add_target_codes("Smokes", np.array([[b], [c]]))
    assert hlmrf.infer(program, by_rows).values("Smokes") == pytest.approx(
        hlmrf.infer(program, by_codes).values("Smokes"))
    with pytest.raises(DataError, match="not in the constant table"):
        by_codes.add_target_codes("Smokes", np.array([[7]]))
    with pytest.raises(DataError, match="outside"):
        by_codes.add_observation_codes("Smokes", np.array([[a]]), [1.5])


# ---- the one-split reader of plain files against the line-by-line reader ----------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from hlmrf.data.loader import _rows_of_lines, _split_lines, read_rows  # noqa: E402

_CELL = st.sampled_from(["a", "bob", "x1", "0", "1", "0.5", "1e-3", "2", "-0.1", "nan", "", " a",
                         "b ", "inf", "q\tr", "7"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_CELL, min_size=1, max_size=4), max_size=6), st.sampled_from([None, 1, 2, 3]),
       st.booleans(), st.sampled_from(["\n", "", "\n\n", "\r\n"]))
def test_plain_files_read_as_line_by_line(tmp_path, cells, arity, with_values, end):
    """Whatever the file (values, names, blank lines, padded or empty columns, \\r\\n), read_rows
    (which takes a one-split path for plain files) returns what the line-by-line reader returns,
    or raises the same error."""
    text = "\n".join("\t".join(row) for row in cells) + (end if cells else "")
    path = tmp_path / "p_obs.txt"
    path.write_text(text, newline="")

    def outcome(f):
        try:
            args, values, lines = f()
            return "rows", args, values.tolist(), list(lines)
        except DataError as exc:
            return "error", type(exc).__name__, str(exc)

    got = outcome(lambda: read_rows(path, arity, with_values))
    want = outcome(lambda: _rows_of_lines(_split_lines(text, str(path)), arity, with_values, str(path)))
    assert got == want
