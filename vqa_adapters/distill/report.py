"""Several seeds' training runs read back, grouped, summarised and compared.

The pipeline is ``load_runs`` (folders written by ``vqa-train --out``) -> ``group_runs`` (runs
whose settings are equal except ``seed``) -> ``aggregate`` (per group and model: the mean and
Student-t interval of each test accuracy over seeds, and the paired test of student vs baseline
run by run) -> ``report_markdown`` / ``report_json`` / ``curves_png`` / ``sweep_png``.
:func:`compare` pairs two groups' models by seed. Only :func:`load_runs` touches files; the
statistics are :mod:`.stats`'; nothing here trains, prints or decides where files go (the
``vqa-report`` CLI does).

A run folder holds ``run.json`` (``{"settings": {...}, "label": ...}``), ``summary.json`` (one
row per network with its test accuracies, fractions in [0, 1]) and ``metrics.csv`` (validation
accuracy per stage, network and epoch). A folder without ``summary.json`` has not finished: it
is skipped with an :class:`UnfinishedRunWarning`, or refused with ``strict=True``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from hlmrf.errors import DataError, HlmrfWarning, SettingsError
from vqa_adapters.distill.stats import MeanCI, PairedTest, mean_ci, paired_test

__all__ = ["Run", "Group", "ModelStats", "GroupStats", "Comparison", "UnfinishedRunWarning",
           "METRICS", "QUESTION_TYPES", "load_run", "load_runs", "group_runs", "aggregate",
           "compare", "sweep_values", "report_markdown", "report_json", "curves_png",
           "sweep_png", "file_stem"]

#: Test accuracies of a summary row, in table order.
METRICS = ("accuracy", "relational", "non_relational")
#: Sort-of-CLEVR question types of a summary row's ``per_type``, in table order (the default when
#: a summary names none; CLEVR runs name their own eight).
QUESTION_TYPES = ("shape", "horizontal", "vertical", "nearest", "farthest", "count")
#: Networks drawn by :func:`curves_png`, in legend order.
CURVE_NETWORKS = ("baseline", "teacher", "student")


class UnfinishedRunWarning(HlmrfWarning):
    """A run folder without ``summary.json`` was skipped."""


@dataclass(frozen=True)
class Run:
    """One finished run folder."""

    path: Path
    settings: dict
    label: str | None
    seed: Any
    #: ``summary.json``'s rows (one per network).
    summary: list[dict]
    #: ``metrics.csv``'s rows, numbers converted (empty when the file is absent).
    metrics: list[dict]

    def row(self, model: str) -> dict | None:
        """The summary row of ``model``, or None."""
        return next((r for r in self.summary if r.get("model") == model), None)


@dataclass(frozen=True)
class Group:
    """Runs whose settings are equal except ``seed``."""

    name: str
    runs: tuple[Run, ...]
    #: The shared settings (``seed`` removed).
    settings: dict
    #: The flattened settings (``"distill.pi": 0.3``) that differ between the groups.
    differing: dict = field(default_factory=dict)

    @property
    def seeds(self) -> list:
        return [r.seed for r in self.runs]


@dataclass(frozen=True)
class ModelStats:
    """One model of one group over seeds: an interval per accuracy column (overall,
    relational, non-relational and each question type the summaries name)."""

    model: str
    seeds: tuple
    stats: dict[str, MeanCI]
    #: Selected (validation) epoch per seed; None where the summary has none.
    epochs: tuple


@dataclass(frozen=True)
class Comparison:
    """A paired test of ``b - a`` with the seeds of the pairs (in ``test.diffs`` order)."""

    a: str
    b: str
    seeds: tuple
    test: PairedTest
    metric: str = "accuracy"


@dataclass(frozen=True)
class GroupStats:
    """:func:`aggregate`'s answer for one group."""

    group: Group
    models: dict[str, ModelStats]
    #: Student vs baseline, paired run by run; None when no run has both.
    student_vs_baseline: Comparison | None
    level: float = 0.95


# ---- reading --------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON at column {exc.colno}: {exc.msg}", str(path),
                        exc.lineno) from None


def _number(value: Any) -> float:
    """A float from a JSON or CSV value; None, "" and "nan" are NaN."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    reader = csv.DictReader(io.StringIO(text))
    need = {"stage", "network", "epoch", "accuracy"}
    missing = need - set(reader.fieldnames or ())
    if missing:
        raise DataError(f"missing column(s) {', '.join(sorted(missing))} (has: "
                        f"{', '.join(reader.fieldnames or ()) or 'nothing'})", str(path), 1)
    rows = []
    for row in reader:
        try:
            rows.append({"stage": row["stage"], "network": row["network"],
                         "epoch": int(float(row["epoch"])),
                         "accuracy": _number(row["accuracy"])})
        except (TypeError, ValueError) as exc:
            raise DataError(f"bad number: {exc}", str(path), reader.line_num) from None
    return rows


def load_run(path: str | os.PathLike, strict: bool = False) -> Run | None:
    """Read one run folder; None (and an :class:`UnfinishedRunWarning`) if it has not finished.

    Raises :class:`~hlmrf.errors.DataError` naming the file for a missing folder or
    ``run.json``, malformed JSON (with line and column) or rows of the wrong shape.
    """
    folder = Path(path)
    if not folder.exists():
        raise DataError("no such folder (expected a run folder written by vqa-train --out)",
                        str(folder))
    if not folder.is_dir():
        raise DataError("not a folder (expected a run folder written by vqa-train --out)",
                        str(folder))
    run_json = folder / "run.json"
    if not run_json.is_file():
        raise DataError("no run.json: not a run folder written by vqa-train --out", str(folder))
    meta = _read_json(run_json)
    if not isinstance(meta, dict) or not isinstance(meta.get("settings"), dict):
        raise DataError('expected an object with a "settings" object', str(run_json))
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        message = f"{folder}: no summary.json (the run has not finished); skipped"
        if strict:
            raise DataError("no summary.json: the run has not finished (drop --strict to skip "
                            "it)", str(folder))
        warnings.warn(message, UnfinishedRunWarning, stacklevel=2)
        return None
    summary = _read_json(summary_path)
    if not isinstance(summary, list) or not all(isinstance(r, dict) and "model" in r
                                                for r in summary):
        raise DataError('expected a list of rows, each an object with a "model"',
                        str(summary_path))
    label = meta.get("label")
    settings = meta["settings"]
    return Run(path=folder, settings=settings, label=None if label is None else str(label),
               seed=settings.get("seed"), summary=summary,
               metrics=_read_metrics(folder / "metrics.csv"))


def load_runs(paths: Iterable[str | os.PathLike], strict: bool = False) -> list[Run]:
    """:func:`load_run` of each path, unfinished runs left out (or refused with ``strict``).

    Raises :class:`~hlmrf.errors.DataError` when no finished run is left.
    """
    paths = list(paths)
    runs = []
    for p in paths:
        run = load_run(p, strict=strict)
        if run is not None:
            runs.append(run)
    if not runs:
        raise DataError(f"none of the {len(paths)} run folder(s) has finished (each lacks "
                        "summary.json)" if paths else "no run folders given")
    return runs


# ---- grouping -------------------------------------------------------------------------------
def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _seed_order(run: Run) -> tuple:
    s = run.seed
    number = isinstance(s, (int, float)) and not isinstance(s, bool)
    return (0, s, "", str(run.path)) if number else (1, 0, str(s), str(run.path))


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs grouped by their settings without ``seed``, groups in order of first appearance.

    A group is named by its label when all its runs share one, else by the settings that differ
    between groups (``distill.pi=0.3``), else ``run``; repeated names get `` (2)``, `` (3)``.
    """
    keyed: dict[str, list[Run]] = {}
    for run in runs:
        rest = {k: v for k, v in run.settings.items() if k != "seed"}
        keyed.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(run)
    flat = [_flatten({k: v for k, v in rs[0].settings.items() if k != "seed"})
            for rs in keyed.values()]
    keys = sorted({k for f in flat for k in f})
    varying = [k for k in keys
               if len({json.dumps(f[k], sort_keys=True, default=str) if k in f else "<unset>"
                       for f in flat}) > 1]
    groups, seen = [], {}
    for rs, f in zip(keyed.values(), flat):
        differing = {k: f.get(k) for k in varying}
        labels = {r.label for r in rs}
        if len(labels) == 1 and None not in labels:
            name = labels.pop()
        elif varying:
            name = ", ".join(f"{k}={_show(f[k]) if k in f else '<unset>'}" for k in varying)
        else:
            name = "run"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        rs = sorted(rs, key=_seed_order)
        groups.append(Group(name=name, runs=tuple(rs), differing=differing,
                            settings={k: v for k, v in rs[0].settings.items() if k != "seed"}))
    return groups


# ---- statistics -----------------------------------------------------------------------------
def _value(row: dict | None, column: str) -> float:
    if row is None:
        return math.nan
    v = row.get(column) if column in METRICS else (row.get("per_type") or {}).get(column)
    try:
        return _number(v)
    except (TypeError, ValueError):
        return math.nan


_HEADER_OF = dict(zip(METRICS, ("overall", "relational", "non-relational")))


def _columns(runs: Iterable[Run]) -> tuple[str, ...]:
    """The accuracies to tabulate: overall, relational, non-relational, then the question types
    the runs' summaries name (Sort-of-CLEVR's six, CLEVR's eight, ...), in first-seen order."""
    types: list[str] = []
    for run in runs:
        for r in run.summary:
            for k in (r.get("per_type") or {}):
                if k not in types:
                    types.append(k)
    return METRICS + (tuple(types) if types else QUESTION_TYPES)


def _models(runs: Iterable[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for r in run.summary:
            if r["model"] not in names:
                names.append(r["model"])
    return names


def aggregate(groups: Sequence[Group], level: float = 0.95) -> list[GroupStats]:
    """Per group and model, :func:`~.stats.mean_ci` over seeds of every test accuracy, the
    selected epochs, and the student - baseline paired test matched run by run."""
    out = []
    for g in groups:
        models = {}
        columns = _columns(g.runs)
        for m in _models(g.runs):
            having = [(run, run.row(m)) for run in g.runs if run.row(m) is not None]
            models[m] = ModelStats(
                model=m, seeds=tuple(run.seed for run, _ in having),
                stats={c: mean_ci([_value(row, c) for _, row in having], level)
                       for c in columns},
                epochs=tuple(row.get("epoch") for _, row in having))
        both = [run for run in g.runs if run.row("baseline") and run.row("student")]
        svb = None
        if both:
            test = paired_test([_value(r.row("baseline"), "accuracy") for r in both],
                               [_value(r.row("student"), "accuracy") for r in both], level)
            kept = [r.seed for r in both
                    if not (math.isnan(_value(r.row("baseline"), "accuracy"))
                            or math.isnan(_value(r.row("student"), "accuracy")))]
            svb = Comparison(a=f"baseline ({g.name})", b=f"student ({g.name})",
                             seeds=tuple(kept), test=test)
        out.append(GroupStats(group=g, models=models, student_vs_baseline=svb, level=level))
    return out


def compare(group_a: Group, model_a: str, group_b: Group, model_b: str,
            metric: str = "accuracy", level: float = 0.95) -> Comparison:
    """Paired test of ``group_b``'s ``model_b`` minus ``group_a``'s ``model_a``, matched by seed
    (seeds present in both with a value on both sides).

    Raises :class:`~hlmrf.errors.SettingsError` for a model neither group's runs have, and
    :class:`~hlmrf.errors.DataError` for a seed that two runs of one group share (the pairing
    would be ambiguous).
    """
    known_columns = _columns([*group_a.runs, *group_b.runs])
    if metric not in known_columns:
        raise SettingsError(f"unknown metric {metric!r}; known: {', '.join(known_columns)}")
    sides = []
    for g, m in ((group_a, model_a), (group_b, model_b)):
        known = _models(g.runs)
        if m not in known:
            raise SettingsError(f"group {g.name!r} has no model {m!r}; its models: "
                                f"{', '.join(known)}")
        by_seed: dict = {}
        for run in g.runs:
            if run.seed in by_seed:
                raise DataError(f"seed {run.seed} appears twice in group {g.name!r} "
                                f"({by_seed[run.seed].path} and {run.path}); pairing by seed "
                                "needs one run per seed", str(run.path))
            by_seed[run.seed] = run
        sides.append({s: _value(r.row(m), metric) for s, r in by_seed.items()})
    va, vb = sides
    seeds = [s for s in va if s in vb and not (math.isnan(va[s]) or math.isnan(vb[s]))]
    test = paired_test([va[s] for s in seeds], [vb[s] for s in seeds], level)
    return Comparison(a=f"{model_a} ({group_a.name})", b=f"{model_b} ({group_b.name})",
                      seeds=tuple(seeds), test=test, metric=metric)


def sweep_values(groups: Sequence[Group], key: str) -> list[float]:
    """The numeric value of the dotted settings ``key`` in each group.

    Raises :class:`~hlmrf.errors.SettingsError` when a group lacks it, a value is not a number,
    or fewer than two distinct values occur.
    """
    values = []
    for g in groups:
        flat = _flatten(g.settings)
        if key not in flat:
            close = sorted(k for k in flat if k.split(".")[-1] == key.split(".")[-1])
            hint = f"; did you mean {', '.join(close)}?" if close else \
                f"; numeric settings that vary: {', '.join(_numeric_varying(groups)) or 'none'}"
            raise SettingsError(f"sweep key {key!r} is not a setting of group {g.name!r}{hint}")
        v = flat[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise SettingsError(f"sweep key {key!r} is not numeric: {_show(v)} in group "
                                f"{g.name!r}")
        values.append(float(v))
    if len(set(values)) < 2:
        raise SettingsError(f"sweep key {key!r} does not vary across the groups (all "
                            f"{values[0]:g} over {len(groups)} group(s)); numeric settings that "
                            f"vary: {', '.join(_numeric_varying(groups)) or 'none'}")
    return values


def _numeric_varying(groups: Sequence[Group]) -> list[str]:
    flats = [_flatten(g.settings) for g in groups]
    keys = set.intersection(*(set(f) for f in flats)) if flats else set()
    out = []
    for k in sorted(keys):
        vs = [f[k] for f in flats]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs) and \
                len(set(vs)) > 1:
            out.append(k)
    return out


# ---- writers --------------------------------------------------------------------------------
def _pct(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}"


def _cell(ci: MeanCI, n_runs: int) -> str:
    if ci.n == 0:
        return "n/a"
    if ci.n == 1:
        return f"{_pct(ci.mean)} (n=1, no interval)"
    text = f"{_pct(ci.mean)} ± {_pct(ci.half_width)}"
    return text if ci.n == n_runs else f"{text} (n={ci.n})"


def _signed(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{100 * v:+.1f}"


def _test_line(c: Comparison, level: float, head: str | None = None) -> str:
    t = c.test
    head = head or f"{c.b} - {c.a}"
    if c.metric != "accuracy":
        head += f" ({c.metric})"
    if t.n == 0:
        return f"{head}: no seeds in common"
    seeds = "seed" if t.n == 1 else "seeds"
    per_seed = f"per seed ({', '.join(map(str, c.seeds))}): " + \
        ", ".join(_signed(d) for d in t.diffs)
    if t.n == 1:
        return f"{head}: {_signed(t.mean_diff)} points, n=1 seed, no interval or test; {per_seed}"
    if math.isinf(t.t) or (math.isnan(t.t) and t.p == 1.0):
        stat = "t undefined (every seed differs by the same amount), " \
            f"p={'0' if math.isinf(t.t) else '1'}"
    else:
        stat = f"t={t.t:.2f}, p={t.p:.3g}"
    return (f"{head}: {_signed(t.mean_diff)} points, {round(100 * level):g}% CI "
            f"[{_pct(t.low)}, {_pct(t.high)}], {stat}, n={t.n} {seeds}; {per_seed}")


def report_markdown(stats: Sequence[GroupStats], comparisons: Sequence[Comparison] = ()) -> str:
    """The report as Markdown: groups, a table per group, the paired tests, per-seed results."""
    level = stats[0].level if stats else 0.95
    pct_level = f"{round(100 * level):g}%"
    lines = ["# Training runs over seeds", "",
             f"Test accuracy in %: mean ± half width of the {pct_level} Student-t interval over "
             "seeds; differences in percentage points, paired by seed (two-sided paired t-test).",
             ""]
    for gs in stats:
        g = gs.group
        lines += [f"## {g.name}", ""]
        lines.append(f"{len(g.runs)} run(s), seeds {', '.join(map(str, g.seeds))}"
                     + ("; " + ", ".join(f"{k}={_show(v)}" for k, v in g.differing.items())
                        if g.differing else ""))
        lines.append("")
        columns = _columns(g.runs)
        headers = [_HEADER_OF.get(c, c) for c in columns]
        lines.append("| model | " + " | ".join(headers) + " | seeds |")
        lines.append("|---" * (len(headers) + 2) + "|")
        for m, ms in gs.models.items():
            n = len(ms.seeds)
            lines.append(f"| {m} | " + " | ".join(_cell(ms.stats[c], n) for c in columns)
                         + f" | {n} |")
        lines.append("")
        if gs.student_vs_baseline is not None:
            lines += [_test_line(gs.student_vs_baseline, level, "student - baseline"), ""]
    if comparisons:
        lines += ["## Comparisons", ""]
        lines += [f"- {_test_line(c, level)}" for c in comparisons]
        lines.append("")
    lines += ["## Per seed", "", "| group | seed | model | test accuracy (%) | selected epoch "
              "| folder |", "|---|---|---|---|---|---|"]
    for gs in stats:
        for run in gs.group.runs:
            for r in run.summary:
                epoch = r.get("epoch")
                lines.append(f"| {gs.group.name} | {run.seed} | {r['model']} | "
                             f"{_pct(_value(r, 'accuracy'))} | "
                             f"{'n/a' if epoch is None else epoch} | {run.path} |")
    return "\n".join(lines) + "\n"


def _clean(x: Any) -> Any:
    """JSON-safe: NaN -> null, inf -> "inf"/"-inf", tuples -> lists, paths -> strings."""
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def _comparison_dict(c: Comparison) -> dict:
    t = c.test
    return {"a": c.a, "b": c.b, "metric": c.metric, "seeds": list(c.seeds),
            "mean_diff": t.mean_diff, "half_width": t.half_width, "low": t.low, "high": t.high,
            "t": t.t, "p": t.p, "n": t.n, "diffs": list(t.diffs)}


def report_json(stats: Sequence[GroupStats], comparisons: Sequence[Comparison] = ()) -> str:
    """Everything in :func:`report_markdown`, unrounded, as JSON text (NaN as null)."""
    level = stats[0].level if stats else 0.95
    doc = {"level": level, "groups": [], "comparisons": [_comparison_dict(c) for c in comparisons]}
    for gs in stats:
        g = gs.group
        doc["groups"].append({
            "name": g.name, "differing": g.differing, "settings": g.settings,
            "runs": [{"path": r.path, "seed": r.seed, "label": r.label, "summary": r.summary}
                     for r in g.runs],
            "models": {m: {"seeds": list(ms.seeds), "epochs": list(ms.epochs),
                           **{c: {"mean": ci.mean, "half_width": ci.half_width, "low": ci.low,
                                  "high": ci.high, "n": ci.n, "values": list(ci.values)}
                              for c, ci in ms.stats.items()}}
                       for m, ms in gs.models.items()},
            "student_vs_baseline": None if gs.student_vs_baseline is None
            else _comparison_dict(gs.student_vs_baseline)})
    return json.dumps(_clean(doc), indent=2) + "\n"


def file_stem(name: str) -> str:
    """``name`` with every character but letters, digits, ``.``, ``_``, ``-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "group"


# ---- figures --------------------------------------------------------------------------------
def _curves(group: Group) -> dict[str, dict[int, list[float]]]:
    """Validation accuracy by network and epoch, one value per run."""
    out: dict[str, dict[int, list[float]]] = {}
    for run in group.runs:
        for r in run.metrics:
            net = r["network"]
            if net in CURVE_NETWORKS and (r["stage"] == net or net == "student") \
                    and not math.isnan(r["accuracy"]):
                out.setdefault(net, {}).setdefault(r["epoch"], []).append(r["accuracy"])
    return out


def _render(fig) -> bytes:
    import matplotlib

    from vqa_adapters.distill.plot import _RC, DPI

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _figure(size: tuple[int, int]):
    from hlmrf.errors import require

    require("matplotlib", "plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from vqa_adapters.distill.plot import DPI

    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _rgb(name: str, k: int) -> list[float]:
    from vqa_adapters.distill.plot import _EXTRA, PALETTE

    return [c / 255 for c in PALETTE.get(name, _EXTRA[k % len(_EXTRA)])]


def curves_png(group: Group, *, title: str | None = None,
               size: tuple[int, int] = (640, 420)) -> bytes:
    """Validation accuracy per epoch of baseline, teacher and student over the group's seeds:
    the mean as a line, the min-max over seeds as a shaded band (as the paper's Fig. 4)."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    from vqa_adapters.distill.plot import _RC

    fig = _figure(size)
    curves = _curves(group)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot()
        for k, net in enumerate(n for n in CURVE_NETWORKS if n in curves):
            by_epoch = sorted(curves[net].items())
            x = [e for e, _ in by_epoch]
            mean = [100 * sum(v) / len(v) for _, v in by_epoch]
            lo = [100 * min(v) for _, v in by_epoch]
            hi = [100 * max(v) for _, v in by_epoch]
            color = _rgb(net, k)
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
            ax.plot(x, mean, color=color, linewidth=2, marker="o", markersize=4,
                    label=f"{net} (mean of {max(len(v) for _, v in by_epoch)})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(title or f"{group.name}: validation accuracy, mean and min-max over seeds")
        if curves:
            ax.legend(loc="lower right", frameon=False)
        fig.tight_layout()
    return _render(fig)


def sweep_png(groups: Sequence[Group], key: str, *, model: str = "student",
              baseline: str = "baseline", level: float = 0.95,
              size: tuple[int, int] = (640, 420)) -> bytes:
    """Test accuracy of ``model`` (mean with its t-interval as error bars) against the numeric
    settings ``key`` that varies across ``groups``, with the mean of every run's ``baseline`` as
    a dashed horizontal line (as the paper's Fig. 5). Raises as :func:`sweep_values`."""
    import matplotlib

    from vqa_adapters.distill.plot import _RC

    xs = sweep_values(groups, key)
    points = []
    for x, g in sorted(zip(xs, groups), key=lambda p: p[0]):
        ci = mean_ci([_value(r.row(model), "accuracy") for r in g.runs], level)
        if ci.n:
            points.append((x, 100 * ci.mean, 0.0 if math.isnan(ci.half_width)
                           else 100 * ci.half_width))
    base = mean_ci([_value(r.row(baseline), "accuracy") for g in groups for r in g.runs], level)
    fig = _figure(size)
    with matplotlib.rc_context(_RC):
        ax = fig.add_subplot()
        if points:
            ax.errorbar([p[0] for p in points], [p[1] for p in points],
                        yerr=[p[2] for p in points], color=_rgb(model, 0), linewidth=2,
                        marker="o", markersize=5, capsize=4,
                        label=f"{model} (mean, {round(100 * level):g}% CI)")
        if base.n:
            ax.axhline(100 * base.mean, color=_rgb(baseline, 1), linestyle="--", linewidth=1.5,
                       label=f"{baseline} (mean of {base.n} runs)")
        ax.set_xlabel(key)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{model} test accuracy against {key}")
        if points or base.n:
            ax.legend(loc="lower right", frameon=False)
        fig.tight_layout()
    return _render(fig)
