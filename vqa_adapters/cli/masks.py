"""``vqa-masks``: PSL masks (and their precision/recall report) for CLEVR or Sort-of-CLEVR questions.

    vqa-masks --scenes S.json --questions Q.json --out DIR [--size 128x128]
              [--rules default|noisy|paper|FILE] [--device cpu|cuda] [--parser text|program]
              [--images DIR] [--previews 8] [--solver auto|numpy-batch|torch|numpy] [--weighted]
              [--store arrays|objects] [--max-mask-gib 4] [--quiet]
    vqa-masks --sort-of-clevr DIR --split test [--out REPORT_DIR] [...]
    vqa-masks --scenes S.json --questions Q.json --shard K/N --out DIR_K [--force] [...]
    vqa-masks merge DIR_0 ... DIR_N-1 --out DIR

CLEVR writes ``DIR/masks.npz`` (every question's scores, chosen objects and render parameters, and
with ``--store arrays``, the default, the uint8 masks; ``--store objects`` keeps no mask array, for
CLEVR's 700,000 training questions: readers render a question's mask when they read it,
:func:`vqa_adapters.psl.io.render_stored_mask`), ``DIR/choices.json``, ``DIR/report.md`` and
``DIR/report.json``, and with ``--images`` PNG previews ``DIR/previews/q<index>.png``.
Sort-of-CLEVR writes ``DIR/masks/<split>.npz`` (key ``masks``, float32 ``(N, Q, H, W)`` at the
image size, the format its torch Dataset reads) and the report to ``--out`` (default ``DIR/masks``,
as ``<split>_report.md/json``). Every file of a run, previews included, appears together or not at
all (one :class:`hlmrf.infra.FileSet` per output folder; the other splits' files in ``DIR/masks``
are kept). Every option and input document is checked before any work, and a mask array that would
not fit ``--max-mask-gib`` is refused (with ``--store arrays``; the error suggests ``--store
objects``). Exit codes are :func:`hlmrf.infra.run_cli`'s: 2 for bad input (data or options; one
line naming the file, question or option), 3 when a solve fails, 1 for a system error (writing,
memory), 130 on Ctrl-C. Questions the parser cannot read are counted in the report, not fatal.
``--shard K/N`` (CLEVR) processes the K-th contiguous 1/N of the questions and writes its own
complete output plus ``shard.json``; a folder that already holds that finished shard is skipped
unless ``--force``. ``merge`` writes the unsharded run's output from the N shard folders
(:mod:`vqa_adapters.shards`). This module parses arguments and reports; the work is in
:mod:`vqa_adapters.psl`.
"""
from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from hlmrf.errors import DataError, SettingsError
from hlmrf.infra import FileSet, Progress, run_cli
from vqa_adapters.outputs import check_run_folder

PROG = "vqa-masks"

#: Default ceiling on the memory of the rendered masks (``--max-mask-gib``).
MAX_MASK_GIB = 4.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="PSL masks of the objects each question refers to.")
    p.add_argument("--scenes", help="CLEVR scene file")
    p.add_argument("--questions", help="CLEVR question file")
    p.add_argument("--sort-of-clevr", dest="soc", metavar="DIR", help="a Sort-of-CLEVR dataset folder")
    p.add_argument("--split", default="test", help="Sort-of-CLEVR split (default test)")
    p.add_argument("--out", help="output folder (CLEVR: required)")
    p.add_argument("--size", default=None, help="mask WIDTHxHEIGHT (CLEVR default 128x128; "
                   "Sort-of-CLEVR: its image size only)")
    p.add_argument("--rules", default="default", help="default, noisy (for a perception's probabilities), paper or a .psl file (default: default)")
    p.add_argument("--parser", default="text", choices=("text", "program"),
                   help="CLEVR question reader: the text or the gold program (default text)")
    p.add_argument("--device", default="cpu", help="torch device of the solver (cpu, cuda, cuda:N)")
    p.add_argument("--solver", default="auto", choices=("auto", "numpy-batch", "torch", "numpy"),
                   help="ADMM backend: numpy-batch (CPU, no torch import) or torch (any device), both one "
                        "stopping rule per question; numpy (one for the union); auto (default): numpy-batch "
                        "on cpu, torch on cuda")
    p.add_argument("--chunk-size", type=int, default=2000, help="questions per grounding (default 2000)")
    p.add_argument("--weighted", action="store_true", help="scale each blob by its object's score")
    p.add_argument("--images", help="folder of the CLEVR images (PNG previews)")
    p.add_argument("--previews", type=int, default=8, help="how many previews to write (default 8)")
    p.add_argument("--store", default="arrays", choices=("arrays", "objects"),
                   help="CLEVR masks.npz: arrays (default) holds the rendered uint8 masks; objects only "
                        "each question's chosen objects and the render parameters (a few bytes a "
                        "question; ClevrMaskDataset renders a mask when it reads it)")
    p.add_argument("--max-mask-gib", type=float, default=MAX_MASK_GIB,
                   help=f"--store arrays: refuse masks needing more memory than this (default "
                        f"{MAX_MASK_GIB:g} GiB)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--shard", metavar="K/N", help="CLEVR: process only the K-th of N contiguous parts "
                   "of the questions (K from 0) and write them with a shard.json; a finished shard in "
                   "--out is skipped (merge the N folders with: vqa-masks merge DIR... --out DIR)")
    p.add_argument("--force", action="store_true", help="with --shard: redo a shard that --out already holds")
    from hlmrf.cli.reference import add_version

    add_version(p)
    return p


def build_merge_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"{PROG} merge", description="Combine the folders of vqa-masks --shard K/N runs "
                "(all N shards of one run) into the output of the unsharded run.")
    p.add_argument("shards", nargs="+", metavar="DIR", help="the --out folders of the shard runs")
    p.add_argument("--out", required=True, help="output folder of the merged run")
    return p


def _config(args, kind: str, size) -> dict:
    config = {"dataset": kind, "rules": args.rules,
              "parser": args.parser if kind == "clevr" else "sort-of-clevr",
              "solver": _solver(args), "device": args.device, "mask_size": f"{size[0]}x{size[1]}",
              "weighted": args.weighted}
    if kind == "clevr":
        config["store"] = args.store
    return config


def _solver(args) -> str:
    from vqa_adapters.psl.solve import resolve_solver

    return resolve_solver(args.solver, args.device)


def _settings(args):
    from vqa_adapters.psl.pipeline import PipelineSettings

    return PipelineSettings(rules=args.rules, parser=args.parser, solver=args.solver, device=args.device,
                            chunk_size=args.chunk_size, weighted=args.weighted)


def _check_options(args) -> None:
    """Every option value, before any file is read (settings: SettingsError, exit 2)."""
    if args.chunk_size < 1:
        raise SettingsError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if args.previews < 0:
        raise SettingsError(f"--previews must be >= 0, got {args.previews}")
    if not (math.isfinite(args.max_mask_gib) and args.max_mask_gib > 0):
        raise SettingsError(f"--max-mask-gib must be a positive number, got {args.max_mask_gib}")
    if args.soc is not None and args.store != "arrays":
        raise SettingsError(f"--store {args.store} applies to CLEVR (--scenes/--questions); a "
                            "Sort-of-CLEVR split is stored as its float32 mask array (masks/<split>.npz)")
    if args.shard is not None:
        from vqa_adapters.shards import parse_shard

        parse_shard(args.shard)
        if args.soc is not None:
            raise SettingsError("--shard applies to CLEVR (--scenes/--questions); a Sort-of-CLEVR "
                                "split is one mask array: run it whole")
        if _solver(args) == "numpy":
            raise SettingsError("--shard with --solver numpy: its solve of a chunk's union depends "
                                "on which questions share the chunk, so shards would not merge into "
                                "the unsharded result; use --solver numpy-batch (the CPU default) or torch")
    elif args.force:
        raise SettingsError("--force applies only with --shard K/N")
    if args.images is not None and not Path(args.images).is_dir():
        raise SettingsError(f"--images {args.images}: not a folder (give the folder of the CLEVR images)")
    if args.rules not in ("default", "noisy", "paper"):
        from vqa_adapters.psl.rules import load_program

        load_program(args.rules)  # a missing or bad rule file fails now, not after loading the data


def _check_mask_memory(n: int, size, dtype: str, limit_gib: float, objects_hint: bool = False) -> None:
    from vqa_adapters.psl.masks import mask_bytes

    need = mask_bytes(n, size, dtype)
    if need > limit_gib * 2**30:
        hint = ("; or --store objects, which stores no mask array (each question's chosen objects "
                "instead; ClevrMaskDataset renders a mask when it reads it)") if objects_hint else ""
        raise SettingsError(
            f"{n} masks of {size[0]}x{size[1]} ({dtype}) need about {need / 2**30:.1f} GiB, over "
            f"the {limit_gib:g} GiB limit; choose a smaller --size (CLEVR images are 480x320, the "
            f"RN reads 128x128), fewer questions, or raise --max-mask-gib{hint}")


def _previews(fs: FileSet, args, result, scenes, masks, facts_of, size) -> int:
    """The first ``--previews`` questions whose image is there; ``masks`` None (``--store
    objects``): each preview's mask rendered alone, as a reader renders it."""
    from vqa_adapters.psl.masks import overlay_image
    from vqa_adapters.psl.pipeline import mask_weights, render_question_mask

    done = 0
    for k, r in enumerate(result.results):
        if done >= args.previews:
            break
        name = scenes[r.image_index].image_filename
        image = Path(args.images) / name
        if name and image.is_file():
            m = masks[k] if masks is not None else render_question_mask(
                facts_of(r), r.chosen, mask_weights(r, result.settings.weighted), size)
            fs.add(f"previews/q{r.question_index}.png", overlay_image(image, m / 255.0))
            done += 1
    return done


def _run_clevr(args, bar_enabled: bool) -> str:
    from vqa_adapters.clevr import load_questions, load_scenes
    from vqa_adapters.psl.facts import clevr_facts_lookup
    from vqa_adapters.psl.io import choices_json, masks_npz_bytes, masks_npz_streamed, report_json, report_markdown
    from vqa_adapters.psl.masks import parse_size
    from vqa_adapters.psl.pipeline import clevr_pipeline, question_mask_specs

    size = parse_size(args.size if args.size is not None else "128x128")
    settings = _settings(args)
    check_run_folder(args.out)
    config = _config(args, "clevr", size)
    shard = _shard_of(args, config)
    if shard is not None and shard["done"]:
        return (f"{args.out} already holds shard {args.shard} of this run: skipped (--force redoes it)")
    fs = FileSet(args.out)  # checks --out (OutputError, exit 1) before any work
    with _collector_paused():
        _load_libraries(_solver(args))
        scenes = load_scenes(args.scenes)
        questions = load_questions(args.questions, scenes)
    if shard is not None:
        from vqa_adapters.shards import shard_range

        total = len(questions)
        questions = questions[slice(*shard_range(total, *shard["k_n"]))]
    if args.store == "arrays":
        _check_mask_memory(len(questions), size, "uint8", args.max_mask_gib, objects_hint=True)
    with Progress(len(questions), "psl masks", enabled=bar_enabled) as bar:
        result = clevr_pipeline(questions, scenes, settings, on_chunk=bar.update)
    del questions  # the results keep what the files need; the question records can go
    facts_of = clevr_facts_lookup(scenes)
    if args.store == "arrays":
        masks, masks_file = masks_npz_streamed(result, question_mask_specs(result, facts_of), size, facts_of)
    else:
        masks, masks_file = None, masks_npz_bytes(result, None, size, facts_of)
    report = result.report()
    with fs:
        fs.add("masks.npz", masks_file)
        fs.add("choices.json", choices_json(result))
        fs.add("report.json", report_json(result, report, config))
        fs.add("report.md", report_markdown(result, report, config))
        if args.images:
            _previews(fs, args, result, scenes, masks, facts_of, size)
        if shard is not None:  # published with the files it describes: present means finished
            from vqa_adapters.shards import SHARD_FILE, shard_manifest

            fs.add(SHARD_FILE, shard_manifest(*shard["k_n"], total, shard["inputs"], config,
                                              shard["previews"], result))
    o = report.overall
    stored = "" if args.store == "arrays" else " (stored as objects)"
    return (f"wrote {args.out}: {len(result.results)} questions ({len(result.failures)} not parsed), masks "
            f"{size[0]}x{size[1]}{stored}; chosen vs referred objects: micro P {o.micro_precision:.3f} "
            f"R {o.micro_recall:.3f}")


def _shard_of(args, config) -> dict | None:
    """``--shard``: which shard, the inputs' identity, and whether ``--out`` already holds it."""
    if args.shard is None:
        return None
    from vqa_adapters.shards import finished, input_digests, parse_shard

    k, n = parse_shard(args.shard)
    for opt, path in (("--scenes", args.scenes), ("--questions", args.questions)):
        if not Path(path).is_file():
            raise DataError(f"{opt}: no such file", path)
    inputs = input_digests(scenes=args.scenes, questions=args.questions)
    previews = args.previews if args.images else 0
    done = not args.force and finished(args.out, k, n, inputs, config, previews)
    return {"k_n": (k, n), "inputs": inputs, "previews": previews, "done": done}


def _merge(args) -> int:
    start = time.perf_counter()
    from vqa_adapters.shards import merge_files

    out = check_run_folder(args.out)
    for d in args.shards:
        here = Path(d).resolve()
        if out == here or out in here.parents or here in out.parents:
            raise SettingsError(f"--out {args.out} is or overlaps the shard folder {d}; merge into "
                                "a folder of its own")
    fs = FileSet(args.out)
    files, _ = merge_files(args.shards)  # every check before anything is written
    with fs:
        for name, data in files.items():
            fs.add(name, data)
    print(f"wrote {args.out}: merged {len(args.shards)} shards ({time.perf_counter() - start:.1f}s)")
    return 0


def _run_sort_of_clevr(args, bar_enabled: bool) -> str:
    import numpy as np

    from vqa_adapters.psl.io import carry_forward, npz_bytes, report_json, report_markdown
    from vqa_adapters.psl.masks import parse_size
    from vqa_adapters.psl.pipeline import render_question_masks, sort_of_clevr_pipeline
    from vqa_adapters.psl.sort_of_clevr import sort_of_clevr_object_facts
    from vqa_adapters.sort_of_clevr import SPLITS, load_sort_of_clevr

    want = parse_size(args.size) if args.size is not None else None
    settings = _settings(args)
    if args.split not in SPLITS:
        raise SettingsError(f"unknown --split {args.split!r}; expected one of {', '.join(SPLITS)}")
    if not Path(args.soc).is_dir():
        raise DataError("not a folder; give the folder vqa-sort-of-clevr --out wrote", args.soc)
    mdir = Path(args.soc) / "masks"
    rdir = Path(args.out) if args.out else mdir
    check_run_folder(mdir, "--sort-of-clevr DIR/masks")
    check_run_folder(rdir)
    mfs = FileSet(mdir)
    rfs = mfs if rdir.resolve() == mdir.resolve() else FileSet(rdir)
    with _collector_paused():
        _load_libraries(_solver(args))
        data = load_sort_of_clevr(args.soc, args.split)
    side = data.settings.size
    size = (side, side)
    if want is not None and want != size:
        raise SettingsError(f"Sort-of-CLEVR masks must match its {side}x{side} images (the Dataset "
                            f"multiplies them); drop --size or give {side}x{side}")
    nq = sum(len(r) for r in data.records)
    _check_mask_memory(nq, size, "float32", args.max_mask_gib)
    with Progress(nq, "psl masks", enabled=bar_enabled) as bar:
        result = sort_of_clevr_pipeline(data, settings, on_chunk=bar.update)
    facts = [sort_of_clevr_object_facts(s) for s in data.scenes]
    masks = render_question_masks(result, lambda r: facts[r.image_index], size, "float32")
    Q = data.settings.questions_per_image
    masks = masks.reshape(len(data.scenes), Q, side, side)
    report = result.report(by="group")
    config = _config(args, "sort-of-clevr", size)
    config["split"] = args.split
    others = [s for s in SPLITS if s != args.split]
    reports = [f"{s}_report.{ext}" for s in others for ext in ("json", "md")]
    # Two folders when --out is given: the report is published first, then the masks, each whole.
    with rfs:
        rfs.add(f"{args.split}_report.json", report_json(result, report, config))
        rfs.add(f"{args.split}_report.md",
                report_markdown(result, report, config, f"PSL mask report: Sort-of-CLEVR {args.split}"))
        if rfs is mfs:
            mfs.add(f"{args.split}.npz", npz_bytes({"masks": masks.astype(np.float32)}))
            carry_forward(mfs, [f"{s}.npz" for s in others] + reports)
        else:
            carry_forward(rfs, reports)
    if rfs is not mfs:
        with mfs:
            mfs.add(f"{args.split}.npz", npz_bytes({"masks": masks.astype(np.float32)}))
            carry_forward(mfs, [f"{s}.npz" for s in others] + reports)
    o = report.overall
    return (f"wrote {mdir / (args.split + '.npz')}: {nq} questions ({len(result.failures)} not parsed); "
            f"chosen vs referred objects: micro P {o.micro_precision:.3f} R {o.micro_recall:.3f}")


@contextmanager
def _collector_paused():
    """Run the block with the cyclic GC off, then freeze what it made (:func:`gc.freeze`).

    For the imports and the input documents: objects (155,000 from torch alone) that live until
    exit, which the collector walks again and again while they are made and never frees. On the
    shared 2-CPU machine, 2,000 questions: ``import torch`` 1.1 s with the collector on, 0.8 s off; the scenes
    and questions 0.32 s on, 0.17 s off; and at exit the interpreter's final collection over
    torch's objects cost another 0.4 s, which frozen objects skip.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _OWNS_PROCESS:  # freezing is for a process that ends with the run, not a caller's
            gc.freeze()
        if enabled:
            gc.enable()


def _load_libraries(solver: str) -> None:
    """Import the pipeline, and torch for the torch solver only (its solve imports it anyway; here
    it is imported under :func:`_collector_paused`). The numpy solvers never import torch: that
    import alone is most of a cold run's second."""
    import vqa_adapters.psl.io  # noqa: F401  (the pipeline, facts, solve and hlmrf with it)

    if solver == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            pass  # the solve names the missing extra


def _run(args) -> int:
    start = time.perf_counter()
    _check_options(args)
    if args.soc is None:
        line = _run_clevr(args, not args.quiet)
    else:
        line = _run_sort_of_clevr(args, not args.quiet)
    print(f"{line} ({time.perf_counter() - start:.1f}s)")
    if _OWNS_PROCESS:
        gc.freeze()  # the run's objects die with the process: spare the exit its full collection
    return 0


# True when main() runs as the command (argv from the command line): only then may the run
# freeze the collector's objects for the rest of the process. A caller of main([...]) keeps a
# process whose garbage collection is untouched.
_OWNS_PROCESS = False


def main(argv: list[str] | None = None) -> int:
    global _OWNS_PROCESS
    _OWNS_PROCESS = argv is None
    rest = sys.argv[1:] if argv is None else list(argv)
    if rest[:1] == ["merge"]:
        margs = build_merge_parser().parse_args(rest[1:])
        return run_cli(PROG, lambda: _merge(margs))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.soc is None:
        missing = [o for o, v in (("--scenes", args.scenes), ("--questions", args.questions),
                                  ("--out", args.out)) if not v]
        if missing:
            parser.error(f"{', '.join(missing)} required (or --sort-of-clevr DIR)")
    elif args.scenes or args.questions:
        parser.error("give either --scenes/--questions or --sort-of-clevr, not both")
    return run_cli(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
