"""Masks: blobs sit on the referred objects' pixel_coords (the scene file is the reference)."""
from __future__ import annotations

import numpy as np
import pytest

from vqa_adapters.clevr import execute_program, referred_objects
from vqa_adapters.psl import PipelineSettings, clevr_pipeline, render_question_masks
from vqa_adapters.psl.facts import clevr_object_facts
from vqa_adapters.psl.masks import MaskSpec, dequantize, parse_size, quantize, render_masks

from .conftest import IMAGE0


def test_mask_of_a_shared_question_sits_on_its_referred_objects(scenes, shared_questions, tmp_path):
    qs = [q for q in shared_questions if q.image_index == 0]
    run = clevr_pipeline(qs, scenes, PipelineSettings())
    scene = scenes[0]
    facts = clevr_object_facts(scene)
    masks = render_question_masks(run, lambda r: facts, (480, 320), "float32")
    for q, r, m in zip(qs, run.results, masks):
        ref = referred_objects(q.program, execute_program(q.program, scene).outputs)
        for o in scene.objects:
            x, y, _ = o.pixel_coords
            v = m[int(y), int(x)]
            if o.index in ref:
                assert v > 0.95, (q.text, o.index)
            else:
                # other objects may lie inside a neighbour's blob, but never near its peak
                assert v < 0.9, (q.text, o.index)
    # the PNG preview over the real image
    from vqa_adapters.psl.masks import overlay_png

    out = tmp_path / "q.png"
    overlay_png(IMAGE0, masks[0], out)
    from PIL import Image

    assert Image.open(out).size == (480, 320)


@pytest.mark.parametrize("size", [(128, 128), (14, 14)])
def test_any_resolution_maps_pixel_coords(size):
    spec = MaskSpec(np.array([[119.0, 131.0]]), np.array([40.0]), np.array([1.0]), (480, 320))
    m = render_masks([spec], size)[0]
    W, H = size
    iy, ix = np.unravel_index(np.argmax(m), m.shape)
    assert abs((ix + 0.5) * 480 / W - 119) <= 480 / W and abs((iy + 0.5) * 320 / H - 131) <= 320 / H


def test_union_is_the_max_of_blobs_and_weights_scale():
    spec = MaskSpec(np.array([[10.0, 10.0], [50.0, 10.0]]), np.array([5.0, 5.0]), np.array([1.0, 0.5]),
                    (64, 32))
    m = render_masks([spec], (64, 32))[0]
    assert m[10, 10] == pytest.approx(np.exp(-0.5 * (0.5 / 3.0) ** 2 * 2), rel=1e-4)
    assert m[10, 50] == pytest.approx(0.5 * np.exp(-0.5 * (0.5 / 3.0) ** 2 * 2), rel=1e-4)
    assert m[30, 30] < 1e-6
    q = render_masks([spec], (64, 32), "uint8")[0]
    assert q.dtype == np.uint8 and np.abs(dequantize(q) - m).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(quantize(m), q)


def test_empty_and_bad_sizes():
    assert render_masks([MaskSpec(np.zeros((0, 2)), np.zeros(0), np.zeros(0), (10, 10))], (4, 4)).max() == 0
    assert parse_size("128x64") == (128, 64) and parse_size("14") == (14, 14)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("big")


def test_batch_matches_the_formula_per_pixel():
    """Questions with 0-7 blobs, two image sizes, more questions than a chunk: every pixel is
    max_j w_j exp(-d_j^2 / (2 (0.6 r_j)^2)) at the pixel centre (float64 reference)."""
    from vqa_adapters.psl.masks import SIGMA_PER_RADIUS, MaskSpec, render_masks

    rng = np.random.default_rng(0)
    specs = []
    for i in range(70):
        k, size = int(rng.integers(0, 8)), ((480, 320), (200, 100))[i % 2]
        specs.append(MaskSpec(rng.random((k, 2)) * size, rng.uniform(5, 40, k), rng.uniform(0.2, 1, k), size))
    W, H = 24, 16
    f = render_masks(specs, (W, H), "float32", chunk=8)
    q = render_masks(specs, (W, H), "uint8", chunk=8)
    for s, fm, qm in zip(specs, f, q):
        gx = (np.arange(W) + 0.5) * s.image_size[0] / W
        gy = (np.arange(H) + 0.5) * s.image_size[1] / H
        ref = np.zeros((H, W))
        for (cx, cy), r, w in zip(s.centres, s.radii, s.weights):
            sig = SIGMA_PER_RADIUS * r
            ref = np.maximum(ref, w * np.exp(-((gy[:, None] - cy) ** 2 + (gx[None, :] - cx) ** 2) / (2 * sig**2)))
        np.testing.assert_allclose(fm, ref, atol=5e-6)  # float32 arithmetic
        assert np.abs(qm.astype(int) - np.rint(255 * ref)).max() <= 1


def _run_and_specs(scenes, shared_questions):
    from vqa_adapters.psl.facts import clevr_facts_lookup
    from vqa_adapters.psl.pipeline import question_mask_specs

    run = clevr_pipeline(list(shared_questions), scenes, PipelineSettings())
    facts_of = clevr_facts_lookup(scenes)
    return run, facts_of, question_mask_specs(run, facts_of)


@pytest.mark.parametrize("window", [1, 7, 512])
def test_windowed_rendering_changes_no_value(scenes, shared_questions, window):
    from vqa_adapters.psl.masks import render_masks_into

    _, _, specs = _run_and_specs(scenes, shared_questions)
    whole = render_masks(specs, (64, 48), "uint8")
    out = np.zeros_like(whole)
    spans = list(render_masks_into(out, specs, (64, 48), window=window))
    assert spans[0][0] == 0 and spans[-1][1] == len(specs)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # in order, each once
    np.testing.assert_array_equal(out, whole)


def test_streamed_masks_file_is_the_same_bytes(scenes, shared_questions, monkeypatch):
    from vqa_adapters.psl import masks as M
    from vqa_adapters.psl.io import masks_npz_bytes, masks_npz_streamed

    run, facts_of, specs = _run_and_specs(scenes, shared_questions)
    monkeypatch.setattr(M, "RENDER_WINDOW", 5)  # several windows even on a small run
    masks = render_masks(specs, (64, 48), "uint8")
    streamed_masks, data = masks_npz_streamed(run, specs, (64, 48), facts_of)
    np.testing.assert_array_equal(streamed_masks, masks)
    assert data == masks_npz_bytes(run, masks, (64, 48), facts_of)


def test_a_failing_deflater_is_reported_not_left_waiting(scenes, shared_questions, monkeypatch):
    from vqa_adapters.psl import io as pio

    run, facts_of, specs = _run_and_specs(scenes, shared_questions)

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pio, "masks_npz_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        pio.masks_npz_streamed(run, specs, (64, 48), facts_of)


def test_a_short_stream_is_refused():
    from vqa_adapters.psl.io import StreamedArray, npz_bytes

    with pytest.raises(ValueError, match="rows written"):
        npz_bytes({"m": StreamedArray((3, 2), np.uint8, iter([np.zeros((2, 2), np.uint8)]))})
