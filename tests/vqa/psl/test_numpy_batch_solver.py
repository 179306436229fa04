"""The CPU solver of the mask pipeline (numpy-batch, hlmrf.inference.batch_numpy) against the
executed programs' referred objects and against the torch solver: the same choices on the bundled
CLEVR questions, and the choice of solver by device."""
from __future__ import annotations

import numpy as np
import pytest

from hlmrf.errors import SettingsError
from vqa_adapters.clevr import execute_program, referred_objects
from vqa_adapters.psl import PipelineSettings, clevr_pipeline
from vqa_adapters.psl.solve import resolve_solver


def test_auto_is_numpy_batch_on_cpu_and_torch_on_cuda():
    assert resolve_solver("auto", "cpu") == "numpy-batch"
    assert resolve_solver("auto", "cuda") == resolve_solver("auto", "cuda:1") == "torch"
    assert resolve_solver("torch", "cpu") == "torch"
    with pytest.raises(SettingsError, match="CPU only"):
        resolve_solver("numpy-batch", "cuda")
    with pytest.raises(SettingsError, match="unknown solver"):
        resolve_solver("cvx", "cpu")


def test_numpy_batch_finds_the_referred_objects(scenes, shared_questions):
    run = clevr_pipeline(shared_questions, scenes, PipelineSettings(solver="numpy-batch"))
    assert not run.failures and run.converged.all()
    for r, q in zip(run.results, shared_questions):
        want = set(referred_objects(q.program, execute_program(q.program, scenes[q.image_index]).outputs))
        assert set(r.chosen) == want, q.text


def test_same_choices_and_scores_as_the_torch_solver(scenes, shared_questions):
    pytest.importorskip("torch")
    a = clevr_pipeline(shared_questions, scenes, PipelineSettings(solver="numpy-batch"))
    b = clevr_pipeline(shared_questions, scenes, PipelineSettings(solver="torch", device="cpu"))
    assert len(a.results) == len(b.results) == len(shared_questions)
    np.testing.assert_array_equal(a.solver_iterations, b.solver_iterations)
    for ra, rb in zip(a.results, b.results):
        assert ra.chosen == rb.chosen
        np.testing.assert_allclose(ra.scores, rb.scores, rtol=0, atol=1e-9)
