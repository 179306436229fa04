"""Referred-object selection under perception noise: symbolic execution vs PSL (issue 18, item 2).

    python benchmarks/bench_noise.py [--questions 300] [--seeds 3] [--p 0,0.05,0.1,0.2,0.3]
        [--missed 0] [--spurious 0] [--calibrated | --overconfident] [--confidence 0.9]
        [--rules default,paper] [--parser program|text] [--sample-seed 0] [--out DIR] [--quiet]

Every scene is perceived by :func:`vqa_adapters.clevr.noise.perceive` (attribute argmax wrong with
probability p, calibrated or overconfident probabilities, optional missed and spurious objects;
one perception per scene, noise seed and p, shared by every question about the scene), and each
question is answered by

- ``exec``: its program executed on the argmax scene (a symbolic executor on a detector's output,
  as NS-VQA does). A ``unique`` that meets 0 or 2+ objects fails the execution: the answer is
  wrong and the referred objects are those of the nodes that ran before the failure;
- ``<rules>:prob``: the PSL mask pipeline (:func:`vqa_adapters.psl.clevr_pipeline`, the path of
  ``vqa-masks``) with the perceived probabilities as soft ``attr_o`` evidence;
- ``<rules>:argmax``: the same pipeline on the argmax scene's one-hot values.

All are scored against the referred objects of the program executed on the *true* scene
(:func:`vqa_adapters.clevr.executor.referred_objects`): micro precision, recall and F1 (counts
pooled over questions; a spurious detection chosen is a false positive, a missed object can only
be a false negative), per noise seed, then the mean and its 95% Student-t interval over seeds;
per question family the nine CLEVR template files (:data:`vqa_adapters.clevr.vocabulary.FAMILY_GROUPS`,
the grouping of ``vqa-masks`` reports). ``--calibrated``/``--overconfident`` choose the
probabilities of ``:prob`` (default: both, as ``:prob`` and ``:prob-over``).

Data: the generated questions of ``../shared/data/clevr/generated`` (scenes 0-99 and 300-499 only,
as its README allows). Scenes are visited in a seeded order (``--sample-seed``) and up to ``--per-scene``
questions taken from each until ``--questions`` are taken (the experiment trains nothing, so there is
no train/test split to keep apart; ``--per-scene`` spreads the questions over many perceptions). The file's programs lack the literal argument of many ``filter_*``
and ``relate`` nodes (82% of its questions); :func:`repair_program` restores each from the node's
stored ``_output`` and the question's words, and keeps a question only if the repaired program,
executed on the true scene, reproduces every stored node output and the answer (the others are
counted and left out). Writes ``DIR/noise.json`` (raw numbers), ``DIR/noise_f1.png`` and
``DIR/tables.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from _common import command_line, load_line  # noqa: E402  (the script's folder is on the path)

from vqa_adapters.clevr.errors import ProgramExecutionError  # noqa: E402
from vqa_adapters.clevr.executor import execute_program, output_matches, referred_objects  # noqa: E402
from vqa_adapters.clevr.io import ProgramStep, load_scenes, question_from_dict, read_json_document  # noqa: E402
from vqa_adapters.clevr.metrics import PRRow, score_sets  # noqa: E402
from vqa_adapters.clevr.noise import NoiseSettings, perceive_all  # noqa: E402
from vqa_adapters.clevr.vocabulary import FAMILY_GROUPS, RELATIONS, family_group  # noqa: E402
from vqa_adapters.distill.stats import mean_ci  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "clevr"
SCENES = SHARED / "CLEVR_val_scenes_000000-000499.json"
QUESTIONS = SHARED / "generated" / "CLEVR_val_questions_300scenes_seed2026.json"
#: The scenes the generated questions' README allows (100-299 are held out).
ALLOWED = frozenset(range(0, 100)) | frozenset(range(300, 500))

#: The generator's words for each value (CLEVR 1.0 synonyms), to resolve a repair by the text.
WORDS = {
    "large": ("large", "big"), "small": ("small", "tiny"),
    "metal": ("metal", "metallic", "shiny"), "rubber": ("rubber", "matte"),
    "cube": ("cube", "cubes", "block", "blocks"), "sphere": ("sphere", "spheres", "ball", "balls"),
    "cylinder": ("cylinder", "cylinders"),
    "left": ("left",), "right": ("right",), "front": ("front",), "behind": ("behind",),
}
_VALUES = {"size": ("large", "small"), "material": ("metal", "rubber"),
           "shape": ("cube", "cylinder", "sphere"),
           "color": ("blue", "brown", "cyan", "gray", "green", "purple", "red", "yellow")}


# --------------------------------------------------------------------------------------------
# Data: the generated file, with its missing literal arguments restored
# --------------------------------------------------------------------------------------------

def _in_text(value: str, words: set[str]) -> bool:
    return any(w in words for w in WORDS.get(value, (value,)))


def repair_program(raw: dict, scene) -> list[dict] | None:
    """The question's program nodes with every missing ``filter_*``/``relate`` argument restored,
    or ``None`` when a node's argument cannot be decided.

    A filter's value is the one that maps the node's stored input set to its stored output; a
    relation the one whose related set is the stored output. When several fit (a filter that
    removes nothing, an empty output) the question's words decide: the single fitting value the
    text names, or for a filter that removes nothing and whose values the text does not name, no
    filter at all (the node is dropped). The caller checks the result by execution.
    """
    words = set(raw["question"].lower().replace("?", " ").replace(";", " ").replace(",", " ").split())
    nodes = raw["program"]
    objs = scene.objects
    out_nodes: list[dict] = []
    remap: dict[int, int] = {}
    for k, n in enumerate(nodes):
        fn = n["type"]
        vals = list(n.get("value_inputs") or n.get("side_inputs") or [])
        inputs = [remap[i] for i in n["inputs"]]
        if (fn.startswith("filter_") or fn == "relate") and not vals:
            src = nodes[n["inputs"][0]]["_output"]
            got = n["_output"]
            if fn == "relate":
                fits = [r for r in RELATIONS
                        if sorted(scene.relationships[r][src]) == sorted(got)]
                named = [r for r in fits if _in_text(r, words)]
                pick = fits if len(fits) == 1 else named
                if len(pick) != 1:
                    return None
                vals = [pick[0]]
            else:
                attr = fn[len("filter_"):]
                fits = [v for v in _VALUES[attr]
                        if sorted(i for i in src if getattr(objs[i], attr) == v) == sorted(got)]
                identity = sorted(src) == sorted(got)
                named = [v for v in fits if _in_text(v, words)]
                if len(named) == 1:
                    vals = [named[0]]
                elif not named and identity:
                    remap[k] = inputs[0]  # an unstated value: no filter
                    continue
                elif len(fits) == 1 and not identity:
                    vals = [fits[0]]
                else:
                    return None
        remap[k] = len(out_nodes)
        out_nodes.append({"type": fn, "inputs": inputs, "value_inputs": vals,
                          "_output": n.get("_output")})
    return out_nodes


def load_data(n_questions: int, per_scene: int = 3, sample_seed: int = 0):
    """The sampled questions, the scenes they are about, and counts of what was left out.

    Scenes are visited in a seeded order and up to ``per_scene`` questions (a seeded sample of
    the scene's) are taken from each, so the questions spread over many perceived scenes.
    """
    rng = np.random.default_rng(sample_seed)
    scenes = {i: s for i, s in load_scenes(SCENES).items() if i in ALLOWED}
    raw = read_json_document(QUESTIONS, "question file")["questions"]
    by_scene: dict[int, list[dict]] = {}
    for d in raw:
        if d["image_index"] in ALLOWED:
            by_scene.setdefault(d["image_index"], []).append(d)
    order = rng.permutation(sorted(by_scene))
    questions, dropped, taken_scenes = [], {"undecided": 0, "mismatch": 0}, []
    for img in order:
        if len(questions) >= n_questions:
            break
        taken_scenes.append(int(img))
        pool = by_scene[int(img)]
        taken = 0
        for j in rng.permutation(len(pool)):
            d = pool[int(j)]
            if len(questions) >= n_questions or taken >= per_scene:
                break
            scene = scenes[int(img)]
            nodes = repair_program(d, scene)
            if nodes is None:
                dropped["undecided"] += 1
                continue
            q = question_from_dict({**d, "program": nodes}, path=str(QUESTIONS))
            try:
                e = execute_program(q.program, scene)
            except ProgramExecutionError:
                dropped["mismatch"] += 1
                continue
            stored = [n["_output"] for n in nodes]
            if e.answer != q.answer or not all(output_matches(v, s if not isinstance(s, list) else tuple(s))
                                               for v, s in zip(e.outputs, stored)):
                dropped["mismatch"] += 1
                continue
            questions.append(q)
            taken += 1
    return questions, {i: scenes[i] for i in taken_scenes}, dropped


# --------------------------------------------------------------------------------------------
# The three ways of choosing objects
# --------------------------------------------------------------------------------------------

def execute_tolerant(program, scene) -> tuple[str | None, frozenset[int]]:
    """``(answer, referred objects)`` of ``program`` on ``scene``; a failed execution answers
    ``None`` and refers to the objects of the nodes that ran before the failing one."""
    try:
        e = execute_program(program, scene)
        return e.answer, referred_objects(program, e.outputs)
    except ProgramExecutionError as exc:
        k = exc.node or 0
        # Re-run the nodes before the failure, closed by exist(scene) so the prefix ends in an answer.
        prefix = tuple(program[:k]) + (ProgramStep("exist", (0,), ()),)
        out = execute_program(prefix, scene).outputs[:k] if k else ()
        return None, referred_objects(program[:k], out)


def _to_true(chosen, source: np.ndarray) -> frozenset[int]:
    """Detections -> true object indices; a spurious detection becomes a unique negative id."""
    return frozenset(int(source[i]) if source[i] >= 0 else -1 - int(i) for i in chosen)


def run_setting(questions, scenes, noisy, methods, parser: str, reference) -> dict[str, list]:
    """Per method, the per-question ``(chosen true ids, answer correct or None)``."""
    from vqa_adapters.psl import PipelineSettings, clevr_pipeline

    out: dict[str, list] = {}
    argmax_scenes = {i: n.scene for i, n in noisy["cal"].items()}
    source = {i: n.source for i, n in noisy["cal"].items()}
    for m in methods:
        if m == "exec":
            rows = []
            for q in questions:
                ans, ref = execute_tolerant(q.program, argmax_scenes[q.image_index])
                rows.append((_to_true(ref, source[q.image_index]), ans == q.answer))
            out[m] = rows
            continue
        rules, kind = m.split(":")
        probs = None
        if kind == "prob":
            probs = {i: dict(n.probs) for i, n in noisy["cal"].items()}
        elif kind == "prob-over":
            probs = {i: dict(n.probs) for i, n in noisy["over"].items()}
        run = clevr_pipeline(questions, argmax_scenes, PipelineSettings(rules=rules, parser=parser),
                             probabilities=probs, reference=False)
        out[m] = [(_to_true(r.chosen, source[r.image_index]), None) for r in run.results]
    return out


def _f1(row: PRRow) -> float:
    p, r = row.micro_precision, row.micro_recall
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def score(rows, questions, reference) -> dict:
    """Micro P/R/F1 overall and per template group, macro F1 and answer accuracy (exec)."""
    groups: dict[str, list] = {}
    all_scores, f1s = [], []
    for (chosen, _), q, ref in zip(rows, questions, reference):
        s = score_sets(chosen, ref)
        all_scores.append(s)
        groups.setdefault(family_group(q.family_index) or "unknown", []).append(s)
        p, r = s.precision, s.recall
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    overall = PRRow.of("all", all_scores)
    acc = [ok for _, ok in rows if ok is not None]
    return {
        "precision": overall.micro_precision, "recall": overall.micro_recall, "f1": _f1(overall),
        "macro_f1": float(np.mean(f1s)) if f1s else math.nan,
        "accuracy": float(np.mean(acc)) if acc else None,
        "by_group": {g: _f1(PRRow.of(g, s)) for g, s in groups.items()},
        "group_questions": {g: len(s) for g, s in groups.items()},
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def _ci(values) -> str:
    c = mean_ci([100 * v for v in values])
    hw = "" if math.isnan(c.half_width) else f" ± {c.half_width:.1f}"
    return f"{c.mean:.1f}{hw}"


def tables(results: dict, methods, ps) -> str:
    lines = ["F1 (micro, %) of the referred objects, mean ± 95% half-width over noise seeds", "",
             "| method | " + " | ".join(f"p={p:g}" for p in ps) + " |",
             "|---|" + "---:|" * len(ps)]
    for m in methods:
        cells = [_ci([r[m]["f1"] for r in results[str(p)]]) for p in ps]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "Precision / recall (micro, %, seed mean)", "",
              "| method | " + " | ".join(f"p={p:g}" for p in ps) + " |", "|---|" + "---:|" * len(ps)]
    for m in methods:
        cells = [f"{100 * np.mean([r[m]['precision'] for r in results[str(p)]]):.1f} / "
                 f"{100 * np.mean([r[m]['recall'] for r in results[str(p)]]):.1f}" for p in ps]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if "exec" in methods:
        lines += ["", "Answer accuracy of exec (%): " + ", ".join(
            f"p={p:g}: {_ci([r['exec']['accuracy'] for r in results[str(p)]])}" for p in ps)]
    groups = [g for g, _ in FAMILY_GROUPS if g in results[str(ps[0])][0][methods[0]]["by_group"]]
    counts = results[str(ps[0])][0][methods[0]]["group_questions"]
    for p in ps:
        lines += ["", f"F1 (%) per template family at p = {p:g} (seed mean)", "",
                  "| family | n | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
        for g in groups:
            cells = [f"{100 * np.mean([r[m]['by_group'][g] for r in results[str(p)]]):.1f}" for m in methods]
            lines.append(f"| {g} | {counts[g]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, methods, ps, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        cis = [mean_ci([100 * r[m]["f1"] for r in results[str(p)]]) for p in ps]
        mean = [c.mean for c in cis]
        hw = [0 if math.isnan(c.half_width) else c.half_width for c in cis]
        ax.errorbar(ps, mean, yerr=hw, marker="o", capsize=3, label=m)
    ax.set_xlabel("p (attribute argmax error rate)")
    ax.set_ylabel("referred-object F1 (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=300, help="questions in all")
    ap.add_argument("--per-scene", type=int, default=3, help="questions per scene at most")
    ap.add_argument("--seeds", type=int, default=3, help="noise seeds")
    ap.add_argument("--sample-seed", type=int, default=0,
                    help="seed of the scene order and question sample (choose weights on another "
                         "sample than the one reported)")
    ap.add_argument("--p", default="0,0.05,0.1,0.2,0.3", help="comma-separated argmax error rates")
    ap.add_argument("--missed", type=float, default=0.0, help="probability a true object is missed")
    ap.add_argument("--spurious", type=float, default=0.0, help="spurious detections per true object")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--calibrated", action="store_true", help="only calibrated probabilities")
    g.add_argument("--overconfident", action="store_true", help="only overconfident probabilities")
    ap.add_argument("--confidence", type=float, default=0.9, help="overconfident argmax probability")
    ap.add_argument("--rules", default="default,paper", help="comma-separated rule files")
    ap.add_argument("--parser", default="program", choices=("program", "text"),
                    help="how PSL reads the question (default: its program, as exec does)")
    ap.add_argument("--out", default="/tmp/noise_run", help="output folder")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    from hlmrf.infra import Progress

    t_start = time.perf_counter()
    load_start = load_line()
    ps = [float(x) for x in args.p.split(",")]
    kinds = ["argmax"] + ([] if args.overconfident else ["prob"]) + ([] if args.calibrated else ["prob-over"])
    methods = ["exec"] + [f"{r}:{k}" for r in args.rules.split(",") for k in kinds]
    questions, scenes, dropped = load_data(args.questions, args.per_scene, args.sample_seed)
    reference = [referred_objects(q.program, execute_program(q.program, scenes[q.image_index]).outputs)
                 for q in questions]
    results: dict[str, list] = {str(p): [] for p in ps}
    with Progress(len(ps) * args.seeds, "noise settings", enabled=not args.quiet) as bar:
        for seed in range(args.seeds):
            for p in ps:
                noisy = {c: perceive_all(scenes, NoiseSettings(p=p, calibrated=c == "cal",
                                                               confidence=args.confidence,
                                                               missed=args.missed, spurious=args.spurious),
                                         seed)
                         for c in ("cal", "over")}
                rows = run_setting(questions, scenes, noisy, methods, args.parser, reference)
                results[str(p)].append({m: score(rows[m], questions, reference) for m in methods})
                bar.update(1, postfix=f"seed {seed} p {p:g}")
    wall = time.perf_counter() - t_start
    head = (f"`{command_line()}`\n\n{len(questions)} questions on {len(scenes)} scenes "
            f"(left out by the repair: {dropped}); seeds {args.seeds}; missed {args.missed:g}, spurious "
            f"{args.spurious:g}, overconfident argmax {args.confidence:g}; PSL reads the {args.parser}.\n"
            f"wall {wall:.0f} s; {load_start} (at start), {load_line()} (at end)\n")
    text = head + "\n" + tables(results, methods, ps)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text(text + "\n")
    (out / "noise.json").write_text(json.dumps({
        "command": command_line(), "wall_seconds": wall, "load_start": load_start, "load_end": load_line(),
        "questions": len(questions), "scenes": sorted(scenes), "dropped": dropped,
        "settings": {"p": ps, "seeds": args.seeds, "missed": args.missed, "spurious": args.spurious,
                     "confidence": args.confidence, "parser": args.parser, "methods": methods},
        "results": results}, indent=1))
    plot(results, methods, ps, out / "noise_f1.png",
         f"{len(questions)} questions, {args.seeds} seeds, missed {args.missed:g}, spurious {args.spurious:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
