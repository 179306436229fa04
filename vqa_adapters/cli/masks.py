"""``vqa-masks``: PSL masks (and their precision/recall report) for CLEVR or Sort-of-CLEVR questions.

    vqa-masks --scenes S.json --questions Q.json --out DIR [--size 128x128]
              [--rules default|paper|FILE] [--device cpu|cuda] [--parser text|program]
              [--images DIR] [--previews 8] [--solver torch|numpy] [--weighted] [--quiet]
    vqa-masks --sort-of-clevr DIR --split test [--out REPORT_DIR] [...]

CLEVR writes ``DIR/masks.npz`` (uint8 masks and every question's scores and choices),
``DIR/choices.json``, ``DIR/report.md`` and ``DIR/report.json``, and with ``--images`` PNG
previews ``DIR/previews/q<index>.png``. Sort-of-CLEVR writes ``DIR/masks/<split>.npz`` (key
``masks``, float32 ``(N, Q, H, W)`` at the image size, the format its torch Dataset reads) and the
report to ``--out`` (default ``DIR/masks``, as ``<split>_report.md/json``). All files of a run
appear together or not at all. Bad input (data or options) prints one line naming the file and
question and exits 2, like hlmrf-infer (3 when a solve fails, 1 when writing fails); questions
the parser cannot read are counted in the report, not fatal.
This module parses arguments and reports; the work is in :mod:`vqa_adapters.psl`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hlmrf.cli.progress import Progress
from hlmrf.errors import HlmrfError, SolverError

PROG = "vqa-masks"


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
    p.add_argument("--rules", default="default", help="default, paper or a .psl file (default: default)")
    p.add_argument("--parser", default="text", choices=("text", "program"),
                   help="CLEVR question reader: the text or the gold program (default text)")
    p.add_argument("--device", default="cpu", help="torch device of the solver (cpu, cuda)")
    p.add_argument("--solver", default="torch", choices=("torch", "numpy"), help="ADMM backend (default torch)")
    p.add_argument("--chunk-size", type=int, default=2000, help="questions per grounding (default 2000)")
    p.add_argument("--weighted", action="store_true", help="scale each blob by its object's score")
    p.add_argument("--images", help="folder of the CLEVR images (PNG previews)")
    p.add_argument("--previews", type=int, default=8, help="how many previews to write (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _config(args, kind: str, size) -> dict:
    return {"dataset": kind, "rules": args.rules, "parser": args.parser if kind == "clevr" else "sort-of-clevr",
            "solver": args.solver, "device": args.device, "mask_size": f"{size[0]}x{size[1]}",
            "weighted": args.weighted}


def _settings(args):
    from vqa_adapters.psl.pipeline import PipelineSettings

    return PipelineSettings(rules=args.rules, parser=args.parser, solver=args.solver, device=args.device,
                            chunk_size=args.chunk_size, weighted=args.weighted)


def _run_clevr(args, bar_enabled: bool) -> str:
    from vqa_adapters.clevr import load_questions, load_scenes
    from vqa_adapters.psl.io import AtomicFiles, choices_json, masks_npz_bytes, report_json, report_markdown
    from vqa_adapters.psl.masks import overlay_png, parse_size
    from vqa_adapters.psl.pipeline import clevr_pipeline, render_question_masks
    from vqa_adapters.psl.facts import clevr_facts_lookup

    size = parse_size(args.size or "128x128")
    settings = _settings(args)
    scenes = load_scenes(args.scenes)
    questions = load_questions(args.questions, scenes)
    with Progress(len(questions), "psl masks", enabled=bar_enabled) as bar:
        result = clevr_pipeline(questions, scenes, settings, on_chunk=bar.update)
    masks = render_question_masks(result, clevr_facts_lookup(scenes), size, "uint8")
    report = result.report()
    config = _config(args, "clevr", size)
    out = Path(args.out)
    files = AtomicFiles()
    files.add(out / "masks.npz", masks_npz_bytes(result, masks))
    files.add(out / "choices.json", choices_json(result))
    files.add(out / "report.json", report_json(result, report, config))
    files.add(out / "report.md", report_markdown(result, report, config))
    files.commit()
    if args.images:
        (out / "previews").mkdir(exist_ok=True)
        done = 0
        for r, m in zip(result.results, masks):
            if done >= args.previews:
                break
            image = Path(args.images) / scenes[r.image_index].image_filename
            if image.exists():
                overlay_png(image, m / 255.0, out / "previews" / f"q{r.question_index}.png")
                done += 1
    o = report.overall
    return (f"wrote {out}: {len(result.results)} questions ({len(result.failures)} not parsed), masks "
            f"{size[0]}x{size[1]}; chosen vs referred objects: micro P {o.micro_precision:.3f} "
            f"R {o.micro_recall:.3f}")


def _run_sort_of_clevr(args, bar_enabled: bool) -> str:
    import numpy as np

    from vqa_adapters.psl.io import AtomicFiles, _npz, report_json, report_markdown
    from vqa_adapters.psl.masks import parse_size
    from vqa_adapters.psl.pipeline import render_question_masks, sort_of_clevr_pipeline
    from vqa_adapters.psl.sort_of_clevr import sort_of_clevr_object_facts
    from vqa_adapters.sort_of_clevr import load_sort_of_clevr

    data = load_sort_of_clevr(args.soc, args.split)
    side = data.settings.size
    size = (side, side)
    if args.size is not None and parse_size(args.size) != size:
        raise ValueError(f"Sort-of-CLEVR masks must match its {side}x{side} images (the Dataset "
                         f"multiplies them); drop --size or give {side}x{side}")
    settings = _settings(args)
    nq = sum(len(r) for r in data.records)
    with Progress(nq, "psl masks", enabled=bar_enabled) as bar:
        result = sort_of_clevr_pipeline(data, settings, on_chunk=bar.update)
    facts = [sort_of_clevr_object_facts(s) for s in data.scenes]
    masks = render_question_masks(result, lambda r: facts[r.image_index], size, "float32")
    Q = data.settings.questions_per_image
    masks = masks.reshape(len(data.scenes), Q, side, side)
    report = result.report(by="group")
    config = _config(args, "sort-of-clevr", size)
    config["split"] = args.split
    mdir = Path(args.soc) / "masks"
    rdir = Path(args.out) if args.out else mdir
    files = AtomicFiles()
    files.add(mdir / f"{args.split}.npz", _npz({"masks": masks.astype(np.float32)}))
    files.add(rdir / f"{args.split}_report.json", report_json(result, report, config))
    files.add(rdir / f"{args.split}_report.md",
              report_markdown(result, report, config, f"PSL mask report: Sort-of-CLEVR {args.split}"))
    files.commit()
    o = report.overall
    return (f"wrote {mdir / (args.split + '.npz')}: {nq} questions ({len(result.failures)} not parsed); "
            f"chosen vs referred objects: micro P {o.micro_precision:.3f} R {o.micro_recall:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.soc is None:
        missing = [o for o, v in (("--scenes", args.scenes), ("--questions", args.questions),
                                  ("--out", args.out)) if not v]
        if missing:
            parser.error(f"{', '.join(missing)} required (or --sort-of-clevr DIR)")
    elif args.scenes or args.questions:
        parser.error("give either --scenes/--questions or --sort-of-clevr, not both")
    if args.chunk_size < 1:
        parser.error("--chunk-size must be >= 1")
    start = time.perf_counter()
    try:
        if args.soc is None:
            line = _run_clevr(args, not args.quiet)
        else:
            line = _run_sort_of_clevr(args, not args.quiet)
    except (HlmrfError, ValueError) as exc:  # bad input: data, rules, option values
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, SolverError) else 2
    except OSError as exc:  # the machine failed us (disk full, permissions): nothing written
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no files written", file=sys.stderr)
        return 130
    print(f"{line} ({time.perf_counter() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
