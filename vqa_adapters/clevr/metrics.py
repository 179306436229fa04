"""Precision and recall of chosen object sets against a question's referred objects.

The paper scores an attention mask by the objects it selects against the objects the question
refers to (see :func:`~vqa_adapters.clevr.executor.referred_objects`). This module scores any chosen
set: per question (:func:`score_sets`), then pooled (*micro*: sums of counts over questions) and
averaged (*macro*: mean of per-question values), overall, per template-file group (the nine CLEVR
template files) and per question family, in a :class:`PrecisionRecallReport` that renders as a
Markdown table. Conventions for empty sets: an empty chosen set has precision 1 (it claims nothing
false) and an empty referred set has recall 1 (there was nothing to find); the same holds for the
pooled sums. It does not choose objects, read files or print.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from hlmrf.errors import DataError

from .executor import execute_program, referred_objects
from .io import Question, Scene
from .parser import ParseFailure, QuestionParse, parse_question, referred_mention_objects
from .vocabulary import FAMILY_GROUPS, family_group

__all__ = [
    "SetScore",
    "PRRow",
    "PrecisionRecallReport",
    "ParserEvaluation",
    "score_sets",
    "precision_recall_report",
    "evaluate_parser",
]


def _ratio(num: int, den: int) -> float:
    return num / den if den else 1.0


@dataclass(frozen=True)
class SetScore:
    """Counts for one question: |chosen & referred|, |chosen|, |referred|."""

    true_positives: int
    chosen: int
    referred: int

    @property
    def precision(self) -> float:
        """|chosen & referred| / |chosen| (1.0 when nothing is chosen)."""
        return _ratio(self.true_positives, self.chosen)

    @property
    def recall(self) -> float:
        """|chosen & referred| / |referred| (1.0 when nothing is referred)."""
        return _ratio(self.true_positives, self.referred)


def score_sets(chosen: Iterable[int], referred: Iterable[int]) -> SetScore:
    """Score one chosen object set against the referred set."""
    c, r = frozenset(chosen), frozenset(referred)
    return SetScore(len(c & r), len(c), len(r))


@dataclass(frozen=True)
class PRRow:
    """Micro and macro precision/recall over a group of questions."""

    group: str
    questions: int
    micro_precision: float
    micro_recall: float
    macro_precision: float
    macro_recall: float

    @staticmethod
    def of(group: str, scores: list[SetScore]) -> "PRRow":
        """Aggregate per-question scores into a row."""
        n = len(scores)
        tp = sum(s.true_positives for s in scores)
        return PRRow(
            group=group,
            questions=n,
            micro_precision=_ratio(tp, sum(s.chosen for s in scores)),
            micro_recall=_ratio(tp, sum(s.referred for s in scores)),
            macro_precision=sum(s.precision for s in scores) / n if n else 1.0,
            macro_recall=sum(s.recall for s in scores) / n if n else 1.0,
        )


@dataclass(frozen=True)
class PrecisionRecallReport:
    """Precision/recall overall, per template group and per family (rows with questions only)."""

    overall: PRRow
    by_group: tuple[PRRow, ...]
    by_family: tuple[PRRow, ...]

    def to_markdown(self, families: bool = False, digits: int = 3) -> str:
        """A Markdown table: the overall row, one row per template group, and per family if asked."""
        rows = [self.overall, *self.by_group, *(self.by_family if families else ())]
        f = f"{{:.{digits}f}}"
        lines = [
            "| group | questions | micro P | micro R | macro P | macro R |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r.group} | {r.questions} | {f.format(r.micro_precision)} | "
                f"{f.format(r.micro_recall)} | {f.format(r.macro_precision)} | "
                f"{f.format(r.macro_recall)} |"
            )
        return "\n".join(lines)


def precision_recall_report(
    items: Iterable[tuple[Iterable[int], Iterable[int], int | None]],
) -> PrecisionRecallReport:
    """Build a report from ``(chosen, referred, family_index)`` triples, one per question.

    ``family_index`` is CLEVR's global family (0..89) or ``None``; questions without a known
    family count in the overall row and in an ``unknown`` group.
    """
    all_scores: list[SetScore] = []
    groups: dict[str, list[SetScore]] = {}
    families: dict[int, list[SetScore]] = {}
    for chosen, referred, family in items:
        s = score_sets(chosen, referred)
        all_scores.append(s)
        groups.setdefault(family_group(family) or "unknown", []).append(s)
        if family is not None:
            families.setdefault(family, []).append(s)
    order = [name for name, _ in FAMILY_GROUPS] + ["unknown"]
    return PrecisionRecallReport(
        overall=PRRow.of("all", all_scores),
        by_group=tuple(PRRow.of(g, groups[g]) for g in order if g in groups),
        by_family=tuple(
            PRRow.of(f"{family_group(k)} #{k}", families[k]) for k in sorted(families)
        ),
    )


@dataclass(frozen=True)
class ParserEvaluation:
    """How many questions a parser read, why the others failed, and the read ones' P/R."""

    total: int
    parsed: int
    failures: tuple[tuple[int, str], ...]
    """(question_index, reason) of each question the parser could not read."""
    report: PrecisionRecallReport
    """Referred objects of the parse's mentions vs the executed program's, over parsed questions."""

    @property
    def parse_rate(self) -> float:
        """parsed / total (1.0 for no questions)."""
        return _ratio(self.parsed, self.total)


def evaluate_parser(
    questions: Iterable[Question],
    scenes: Mapping[int, Scene],
    parse: Callable[[str], QuestionParse | ParseFailure] = parse_question,
) -> ParserEvaluation:
    """Parse each question's text and score its referred mentions against its executed program.

    Every question needs a program (the reference); the chosen set of a parse is the union of its
    referred mentions' objects (:func:`~vqa_adapters.clevr.parser.referred_mention_objects`).
    """
    items = []
    failures = []
    total = 0
    for q in questions:
        total += 1
        if q.program is None:
            raise DataError(f"question {q.question_index} has no program to score against")
        p = parse(q.text)
        if isinstance(p, ParseFailure):
            failures.append((q.question_index, p.reason))
            continue
        scene = scenes[q.image_index]
        e = execute_program(q.program, scene, q.question_index)
        items.append((referred_mention_objects(p, scene), referred_objects(q.program, e.outputs),
                      q.family_index))
    return ParserEvaluation(
        total=total, parsed=len(items), failures=tuple(failures),
        report=precision_recall_report(items),
    )
