"""Small Sort-of-CLEVR datasets shared by the tests (generated once per session, in a tmp dir)."""
from __future__ import annotations

import pytest

from vqa_adapters.sort_of_clevr import SortOfClevrSettings, write_dataset

# Two configurations: the defaults at a tiny count, and a 64 px variant (the size the paper feeds
# its attention teacher) with an odd question count and a non-half relational share.
CONFIGS = {
    "default": dict(seed=11, train=30, val=10, test=6),
    "small64": dict(seed=5, train=12, val=4, test=3, size=64, object_size=4,
                    questions_per_image=7, relational_share=0.3),
}


@pytest.fixture(scope="session", params=sorted(CONFIGS))
def dataset(request, tmp_path_factory):
    """(folder, settings) of a dataset written by ``write_dataset``."""
    settings = SortOfClevrSettings(**CONFIGS[request.param])
    out = tmp_path_factory.mktemp(f"soc-{request.param}")
    write_dataset(out, settings)
    return out, settings
