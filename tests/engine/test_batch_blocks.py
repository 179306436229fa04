"""ModelBatch.from_blocks: cutting a block-diagonal model into a batch, checked against stacking the
blocks with ModelBatch.from_models (an independent construction) and against solving each block
alone."""
from __future__ import annotations


import numpy as np
import pytest
import scipy.sparse as sp

from hlmrf.testing.random_models import clevr_like_model, random_model

from hlmrf.inference.settings import AdmmSettings  # noqa: E402
from hlmrf.model.batch import ModelBatch  # noqa: E402
from hlmrf.model.hlmrf import HLMRF, GroundIndex  # noqa: E402


def _blocks(seed=0, count=6):
    rng = np.random.default_rng(seed)
    models = [random_model(rng, int(rng.integers(3, 12)), int(rng.integers(2, 20)),
                           squared_share=0.5, constraints=int(rng.integers(0, 3))) for _ in range(count)]
    models.append(clevr_like_model(rng, mentions=2, objects=4, n_pots=20))
    # One rule map for all blocks, as one grounding gives.
    texts = tuple(f"rule {i}" for i in range(max(int(m.rule.max()) + 1 for m in models)))
    return [HLMRF(m.A, m.c, m.w, m.p, m.kind, m.rule, GroundIndex(rule_texts=texts)) for m in models]


def _union(models, rng):
    """The blocks as one model (no rule offsets) with its rows shuffled, and its var_batch."""
    ref = ModelBatch.from_models(models)
    perm = rng.permutation(ref.model.m)
    m = ref.model
    union = HLMRF(m.A[perm], m.c[perm], m.w[perm], m.p[perm], m.kind[perm],
                  np.concatenate([b.rule for b in models])[perm], models[0].index)
    return union, ref.var_batch, ref


def _rows(m: HLMRF) -> np.ndarray:
    """The model's rows as a table (coefficients, c, w, p, kind, rule) in a canonical order."""
    t = np.column_stack([m.A.toarray(), m.c, m.w, m.p, m.kind, m.rule])
    return t[np.lexsort(t.T[::-1])] if len(t) else t


def _same_model(a: HLMRF, b: HLMRF):
    """Equal up to the order of rows (from_blocks keeps a block's rows in the union's order)."""
    assert a.A.shape == b.A.shape and a.A.has_sorted_indices
    np.testing.assert_array_equal(_rows(a), _rows(b))


def test_from_blocks_matches_from_models():
    models = _blocks()
    union, var_batch, ref = _union(models, np.random.default_rng(1))
    b = ModelBatch.from_blocks(union, var_batch)
    assert len(b) == len(models)
    for name in ("var_ptr", "row_ptr", "rule_ptr", "var_batch", "row_batch"):
        np.testing.assert_array_equal(getattr(b, name), getattr(ref, name))
    for k in range(len(models)):
        _same_model(b.models[k], models[k])
    # The stacked model: rows in block order (the rows of one block keep their relative order, so
    # compare energies per rule, which do not depend on the order within a block).
    y = np.random.default_rng(2).random(union.n)
    np.testing.assert_allclose(b.model.energy_by_rule(y), ref.model.energy_by_rule(y))
    assert b.model.index.rule_texts == ref.model.index.rule_texts
    assert b.split(y)[3].shape == (models[3].n,)


def test_blocks_are_built_lazily_and_kept():
    models = _blocks()
    union, var_batch, _ = _union(models, np.random.default_rng(3))
    b = ModelBatch.from_blocks(union, var_batch)
    assert all(m is None for m in b.models._built)
    first = b.models[-1]
    assert b.models[-1] is first and b.models._built[-1] is first
    assert sum(m is not None for m in b.models._built) == 1
    assert [m.n for m in b.models[1:3]] == [m.n for m in models[1:3]]
    with pytest.raises(IndexError):
        b.models[len(models)]


def test_trailing_empty_blocks_and_empty_model():
    models = _blocks(count=2)
    union, var_batch, _ = _union(models, np.random.default_rng(4))
    b = ModelBatch.from_blocks(union, var_batch, num_models=len(models) + 2)
    assert len(b) == len(models) + 2 and b.models[-1].n == 0 and b.models[-1].m == 0
    empty = HLMRF(sp.csr_matrix((0, 0)), np.zeros(0), np.zeros(0), np.zeros(0, np.int8),
                  np.zeros(0, np.int8), np.zeros(0, np.int32))
    assert len(ModelBatch.from_blocks(empty, np.zeros(0, np.int64))) == 0


def test_from_blocks_rejects_bad_assignments():
    models = _blocks(count=3)
    union, var_batch, _ = _union(models, np.random.default_rng(5))
    with pytest.raises(ValueError, match="entries"):
        ModelBatch.from_blocks(union, var_batch[:-1])
    with pytest.raises(ValueError, match="non-decreasing"):
        ModelBatch.from_blocks(union, var_batch[::-1].copy())
    shifted = var_batch.copy()
    shifted[np.flatnonzero(np.diff(var_batch))[0]] += 1  # the last variable of block 0 moves on
    with pytest.raises(ValueError, match="two blocks"):
        ModelBatch.from_blocks(union, shifted)


def test_solve_batch_on_blocks_equals_each_block_alone():
    torch_admm = pytest.importorskip("hlmrf.inference.torch_admm")
    models = _blocks(seed=7)
    union, var_batch, _ = _union(models, np.random.default_rng(8))
    st = AdmmSettings(eps_abs=1e-7, eps_rel=1e-7, max_iter=20000)
    got = torch_admm.solve_batch(ModelBatch.from_blocks(union, var_batch), st)
    for m, r in zip(models, got):
        alone = torch_admm.solve_torch(m, st)
        assert r.iterations == alone.iterations
        np.testing.assert_allclose(r.y, alone.y, atol=1e-9)
