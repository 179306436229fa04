"""Every command and code block in README.md and docs/*.md runs, so the docs cannot drift.

``console``/``bash``/``sh`` blocks run line by line in bash (when some lines start with ``$ ``,
only those are commands and the rest is shown output); ``python`` blocks run as scripts. The
blocks of one document run in order in one fresh folder (a document reads as one session), where
the repository's examples, tests, docs, benchmarks and packages are linked, so relative paths in
the docs work and outputs land in a throwaway place.
``pip install`` and ``pytest`` lines are README's install and test commands, which CI itself runs.
A block may be excluded only by an HTML comment right before it,
``<!-- doc-test: skip REASON -->``, and the reason is shown in the test report.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"console", "bash", "sh", "python"}
LINKED = ["examples", "tests", "docs", "benchmarks", "hlmrf", "vqa_adapters"]
_BLOCK = re.compile(r"(<!--\s*doc-test:\s*skip\s*(?P<reason>[^>]*?)-->\s*\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)```", re.S)


def collect():
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in _BLOCK.finditer(text):
            if m.group("lang") not in RUNNABLE:
                continue
            line = text.count("\n", 0, m.start("body"))
            yield pytest.param(doc, m.group("lang"), m.group("body"), (m.group("reason") or "").strip(),
                               id=f"{doc.name}:{line}")


def commands(body: str) -> list[str]:
    lines = [l for l in body.splitlines() if l.strip() and not l.strip().startswith("#")]
    if any(l.startswith("$ ") for l in lines):
        lines = [l[2:] for l in lines if l.startswith("$ ")]
    # join backslash continuations
    out, cur = [], ""
    for l in lines:
        if l.rstrip().endswith("\\"):
            cur += l.rstrip()[:-1] + " "
            continue
        out.append(cur + l)
        cur = ""
    return [c for c in out if not re.match(r"\s*(pip install|pytest)\b", c)]


_WORKDIRS: dict[str, Path] = {}


@pytest.fixture
def workdir(request, tmp_path_factory):
    doc = request.node.callspec.params["doc"]
    if doc.name not in _WORKDIRS:
        path = tmp_path_factory.mktemp(doc.stem)
        for name in LINKED:
            os.symlink(ROOT / name, path / name)
        _WORKDIRS[doc.name] = path
    return _WORKDIRS[doc.name]


@pytest.mark.parametrize("doc, lang, body, reason", list(collect()))
def test_doc_block_runs(doc, lang, body, reason, workdir):
    if reason:
        pytest.skip(f"skipped in {doc.name}: {reason}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    if lang == "python":
        script = workdir / "block.py"
        script.write_text(body)
        proc = subprocess.run([sys.executable, str(script)], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{doc.name} block failed:\n{body}\n--- stderr:\n{proc.stderr[-3000:]}"
        return
    for cmd in commands(body):
        proc = subprocess.run(["bash", "-c", cmd], cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, f"{doc.name}: `{cmd}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}"


def test_docs_have_runnable_blocks():
    assert len(list(collect())) >= 10
