"""Structure of vqa-masks' cold start (issue 14, item 7): torch and the inputs are loaded with the
cyclic GC paused and then frozen, so neither the run nor the interpreter's exit walks them again;
on the CPU the default solver (numpy-batch) never imports torch.
Nothing here is timed (benchmarks/bench_vqa_cold.py measures it)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from .conftest import OFFICIAL, SCENES


def test_torch_is_imported_under_a_paused_collector_and_frozen(tmp_path):
    pytest.importorskip("torch")
    script = textwrap.dedent(f"""
        import gc, sys
        from vqa_adapters.cli.masks import main
        assert "torch" not in sys.modules
        frozen = gc.get_freeze_count()
        args = ["--scenes", {str(SCENES)!r}, "--questions", {str(OFFICIAL)!r},
                "--out", {str(tmp_path / "out")!r}, "--solver", "torch", "--quiet"]
        rc = main(args)  # called as a function: the caller's collector is left alone
        in_process = gc.get_freeze_count() - frozen
        sys.argv = ["vqa-masks"] + args[:5] + [{str(tmp_path / "out2")!r}] + args[6:]
        rc2 = main()  # as the command: the imports and inputs are frozen
        print(rc, rc2, gc.isenabled(), in_process, gc.get_freeze_count() - frozen)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    rc, rc2, enabled, in_process, frozen = out.stdout.splitlines()[-1].split()
    assert rc == rc2 == "0" and enabled == "True"  # the collector is back on for the pipeline
    assert in_process == "0"
    assert int(frozen) > 100_000  # torch's objects (about 155,000) sit in the permanent generation


def test_cpu_default_never_imports_torch(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from vqa_adapters.cli.masks import main
        rc = main(["--scenes", {str(SCENES)!r}, "--questions", {str(OFFICIAL)!r},
                   "--out", {str(tmp_path / "out")!r}, "--device", "cpu", "--quiet"])
        print(rc, "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1].split() == ["0", "False"]
    assert '"solver": "numpy-batch"' in (tmp_path / "out" / "report.json").read_text()
