"""Sort-of-CLEVR: chosen objects vs the generator's stored referred objects."""
from __future__ import annotations

import numpy as np
import pytest

from vqa_adapters.psl import PipelineSettings, sort_of_clevr_pipeline
from vqa_adapters.psl.sort_of_clevr import parse_sort_of_clevr
from vqa_adapters.sort_of_clevr import TEMPLATES, SortOfClevrSettings, generate_split


@pytest.fixture(scope="module")
def split():
    return generate_split(SortOfClevrSettings(seed=3, train=1, val=1, test=60), "test")


def test_chosen_objects_match_the_stored_referred_objects(split):
    run = sort_of_clevr_pipeline(split, PipelineSettings())
    rep = run.report(by="group")
    assert not run.failures and rep.overall.questions == 600
    assert rep.overall.micro_precision >= 0.99 and rep.overall.micro_recall >= 0.99
    exact = sum(set(r.chosen) == set(r.referred) for r in run.results)
    assert exact >= 0.99 * len(run.results)
    assert {g.group for g in rep.by_group} == {t.name.lower() for t in TEMPLATES}


def test_reader_reads_every_template_and_rejects_others():
    for t in TEMPLATES.values():
        p = parse_sort_of_clevr(t.format(color="orange"))
        assert not hasattr(p, "reason"), t
        assert any(m.color == "orange" for m in p.mentions)
    assert parse_sort_of_clevr("What colour is the sky?").reason
    assert "unknown colour" in parse_sort_of_clevr("Is the pink object on the top?").reason


def test_cli_writes_masks_the_dataset_reads(tmp_path):
    torch = pytest.importorskip("torch")
    from vqa_adapters.cli.masks import main
    from vqa_adapters.sort_of_clevr import write_dataset
    from vqa_adapters.sort_of_clevr.torch_data import SortOfClevrDataset

    root = tmp_path / "soc"
    write_dataset(root, SortOfClevrSettings(seed=1, train=1, val=1, test=4))
    assert main(["--sort-of-clevr", str(root), "--split", "test", "--quiet"]) == 0
    with np.load(root / "masks" / "test.npz") as z:
        masks = z["masks"]
    assert masks.dtype == np.float32 and masks.shape == (4, 10, 75, 75)
    ds = SortOfClevrDataset(root, "test", masks="auto")
    from vqa_adapters.sort_of_clevr import load_sort_of_clevr

    data = load_sort_of_clevr(root, "test")
    for k in range(len(ds)):
        i, j = divmod(k, 10)
        rec = data.records[i][j]
        m = ds[k]["mask"][0]
        for o in rec.objects:
            ob = data.scenes[i].objects[o]
            assert float(m[ob.y, ob.x]) > 0.95
    assert (root / "masks" / "test_report.json").exists()
    assert torch.is_tensor(ds[0]["mask"])
