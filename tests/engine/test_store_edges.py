"""FactStore's Python API on odd input: a DataError naming the predicate and row, never a bare
ValueError from numpy (found by the learning property test)."""
import pytest

from hlmrf.data.store import FactStore
from hlmrf.errors import DataError


@pytest.mark.parametrize("rows, values, match", [
    ([], None, "no rows, so its arity is unknown"),
    ([], [], "no rows, so its arity is unknown"),
    ([], [0.5], "0 rows but 1 values"),
    ([("a", "b"), ("a",)], [0.5, 0.5], r"P\('a',\): expected 2 arguments like the other rows"),
    ([("a",)], ["hello"], r"P\('a',\): value 'hello' is not a number"),
    ([("a",)], [float("nan")], "outside"),
])
def test_bad_rows_are_data_errors(rows, values, match):
    with pytest.raises(DataError, match=match):
        FactStore().add_observations("P", rows, values=values)


def test_no_rows_for_a_declared_predicate_is_a_no_op():
    store = FactStore()
    store.declare("Friends", 2)
    store.add_observations("Friends", [])
    store.add_truth("Friends", [], values=[])
    assert store.get("Friends").obs_args.shape == (0, 2)
    store.add_observations("Lived", [], arity=2)
    assert store.get("Lived").arity == 2
