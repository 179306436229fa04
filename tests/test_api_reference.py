"""The API reference (mkdocs + mkdocstrings, ``mkdocs.yml``) builds with warnings as errors.

``mkdocs build --strict`` fails on a docstring that names a parameter the signature lacks (a
renamed parameter), a section mkdocstrings cannot parse, a reST cross-reference (``:class:`X```)
to no object (checked by ``docs/api/rst_roles.py``), a broken link between the pages, or a page
left out of the navigation. The site is built into a temporary folder, never into the checkout.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _missing() -> list[str]:
    out = []
    for module, package in (("mkdocs", "mkdocs"), ("mkdocstrings", "mkdocstrings"),
                            ("mkdocstrings_handlers.python", "mkdocstrings[python]")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(package)
    return out


pytestmark = pytest.mark.skipif(
    bool(_missing()), reason=f"the API reference needs {', '.join(_missing())} (in the dev extra: "
                             f'pip install "mkdocs" "mkdocstrings[python]")')


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(config), "-d", str(site)], cwd=config.parent, capture_output=True,
                          text=True, timeout=300)


def test_api_reference_builds_strict(tmp_path):
    t0 = time.perf_counter()
    run = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    seconds = time.perf_counter() - t0
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    page = (tmp_path / "site" / "api" / "learning" / "index.html").read_text(encoding="utf-8")
    for name in ("VotedPerceptron", "MaxPseudoLikelihood", "MapLossLearner", "set_params"):
        assert name in page
    assert ":class:`" not in page  # the reST roles were rendered, not printed
    assert seconds < 60, f"the API reference took {seconds:.1f} s to build"


def _toy_project(tmp_path: Path, docstring: str) -> Path:
    """A one-module project documented with this repository's handler settings and extension."""
    shutil.copy(ROOT / "docs" / "api" / "rst_roles.py", tmp_path / "rst_roles.py")
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "__init__.py").write_text(textwrap.dedent(f'''\
        """Toy."""


        class Settings:
            """Settings."""


        def solve(model, rho=1.0):
            {docstring!r}
        '''))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# toy\n\n::: toy\n")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    plugins = config[config.index("plugins:"):].replace("docs/api/rst_roles.py", "rst_roles.py") \
        .replace("packages: [hlmrf, vqa_adapters]", "packages: [toy]")
    (tmp_path / "mkdocs.yml").write_text("site_name: toy\nstrict: true\n" + plugins)
    return tmp_path / "mkdocs.yml"


@pytest.mark.parametrize("docstring, expected", [
    ("Solve.\n\nParameters\n----------\nmodel : the model.\nrho : the step.\n", None),
    ("Solve.\n\nParameters\n----------\nmodel : the model.\nsigma : the step.\n",
     "'sigma' does not appear in the function signature"),
    ("Solve with :class:`Settings`.\n", None),
    ("Solve with :class:`SolverSettings`.\n", "broken cross-reference :class:`SolverSettings`"),
], ids=["good", "renamed-parameter", "good-reference", "broken-reference"])
def test_the_strict_build_catches_what_it_is_for(tmp_path, docstring, expected):
    run = _build(_toy_project(tmp_path, docstring), tmp_path / "site")
    if expected is None:
        assert run.returncode == 0, run.stderr
    else:
        assert run.returncode != 0 and expected in run.stderr, run.stderr
