"""One torch thread: the machine is shared, and results must not depend on the thread count."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def mixed_question_file(tmp_path_factory):
    """``write(arrange)``: a CLEVR question file of the bundled generated val questions and the 7
    official ones of image 0 (which has its image; renumbered from 1000, the fifth made unreadable
    by the parser), in the order ``arrange(generated, official)`` lists them."""
    import json
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "clevr"

    def write(arrange):
        gen = json.loads((data / "CLEVR_val_000000-000032_generated_seed0.json").read_text())["questions"]
        off = json.loads((data / "CLEVR_val_questions_img000000_7q.json").read_text())["questions"]
        for i, q in enumerate(off):
            q["question_index"] = 1000 + i
        off[4]["question"] = "Frobnicate the blorp?"
        path = tmp_path_factory.mktemp("q") / "questions.json"
        path.write_text(json.dumps({"questions": arrange(gen, off)}))
        return path

    return write
