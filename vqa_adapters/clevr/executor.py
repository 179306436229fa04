"""Execute CLEVR functional programs on scenes, and find the objects a question refers to.

The executor runs the 26 CLEVR 1.0 functions on a :class:`~vqa_adapters.clevr.io.Scene` and returns
the answer in CLEVR's string form together with every node's output (object sets as ``frozenset``,
``unique`` as an object index, counts as ``int``, ``exist``/``equal_*``/comparisons as ``bool``,
``query_*`` as the attribute value). ``same_*`` returns the *other* objects sharing the value.
``unique`` on a set whose size is not 1 raises :class:`ProgramExecutionError` (it does not return a
flagged result): a question whose presupposition fails has no answer and no referred objects.
:func:`referred_objects` gives the paper's ground truth for mask precision/recall: the union of every
``unique`` node's output and the input sets of every ``count`` and ``exist`` node. This module does
not read files or parse question text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .errors import ProgramExecutionError
from .io import ProgramStep, Scene, normalize_answer

__all__ = ["Execution", "execute_program", "referred_objects", "output_matches"]


@dataclass(frozen=True)
class Execution:
    """The result of running a program: the answer (CLEVR string form) and every node's output."""

    answer: str
    outputs: tuple[Any, ...]
    """``outputs[k]`` is node ``k``'s value: frozenset of object indices, int, bool or str."""


def _objects(value: Any, k: int, fn: str) -> frozenset[int]:
    if not isinstance(value, frozenset):
        raise ProgramExecutionError(f"{fn} needs a set of objects, got {value!r}", node=k)
    return value


def _one(value: Any, k: int, fn: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProgramExecutionError(
            f"{fn} needs a single object (the output of unique), got {value!r}", node=k
        )
    return value


def _int(value: Any, k: int, fn: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProgramExecutionError(f"{fn} needs a count, got {value!r}", node=k)
    return value


def execute_program(
    program: Sequence[ProgramStep], scene: Scene, question_index: int | None = None
) -> Execution:
    """Run ``program`` on ``scene``.

    Raises
    ------
    ProgramExecutionError
        When ``unique`` meets a set of size != 1, or a node gets an input of the wrong type
        (a malformed program). The message names the question (if given) and the node.
    """
    objs = scene.objects
    out: list[Any] = []
    try:
        for k, step in enumerate(program):
            fn = step.function
            args = [out[i] for i in step.inputs]
            if fn == "scene":
                v: Any = frozenset(range(len(objs)))
            elif fn.startswith("filter_"):
                attr, value = fn[len("filter_"):], step.value_inputs[0]
                v = frozenset(o for o in _objects(args[0], k, fn) if getattr(objs[o], attr) == value)
            elif fn == "unique":
                s = _objects(args[0], k, fn)
                if len(s) != 1:
                    raise ProgramExecutionError(
                        f"unique needs exactly one object, got {len(s)} ({sorted(s)})", node=k
                    )
                (v,) = s
            elif fn == "relate":
                v = frozenset(scene.relationships[step.value_inputs[0]][_one(args[0], k, fn)])
            elif fn == "union":
                v = _objects(args[0], k, fn) | _objects(args[1], k, fn)
            elif fn == "intersect":
                v = _objects(args[0], k, fn) & _objects(args[1], k, fn)
            elif fn == "count":
                v = len(_objects(args[0], k, fn))
            elif fn == "exist":
                v = len(_objects(args[0], k, fn)) > 0
            elif fn.startswith("query_"):
                v = getattr(objs[_one(args[0], k, fn)], fn[len("query_"):])
            elif fn.startswith("same_"):
                attr = fn[len("same_"):]
                o = _one(args[0], k, fn)
                ref = getattr(objs[o], attr)
                v = frozenset(p.index for p in objs if p.index != o and getattr(p, attr) == ref)
            elif fn.startswith("equal_") and fn != "equal_integer":
                a, b = args
                if not (isinstance(a, str) and isinstance(b, str)):
                    raise ProgramExecutionError(f"{fn} needs two attribute values", node=k)
                v = a == b
            elif fn in ("equal_integer", "less_than", "greater_than"):
                a, b = _int(args[0], k, fn), _int(args[1], k, fn)
                v = a == b if fn == "equal_integer" else (a < b if fn == "less_than" else a > b)
            else:  # pragma: no cover - io.program_from_list admits only the 26 functions
                raise ProgramExecutionError(f"unknown function {fn!r}", node=k)
            out.append(v)
    except ProgramExecutionError as exc:
        if question_index is None:
            raise
        raise ProgramExecutionError(
            exc.detail, node=exc.node, question_index=question_index
        ) from None
    answer = out[-1]
    if isinstance(answer, frozenset):
        raise ProgramExecutionError(
            "the program ends in a set of objects, not an answer", node=len(out) - 1,
            question_index=question_index,
        )
    return Execution(answer=normalize_answer(answer), outputs=tuple(out))


def referred_objects(program: Sequence[ProgramStep], outputs: Sequence[Any]) -> frozenset[int]:
    """The objects a question refers to: every ``unique`` output and ``count``/``exist`` input set."""
    found: set[int] = set()
    for step, value in zip(program, outputs):
        if step.function == "unique":
            found.add(value)
        elif step.function in ("count", "exist"):
            found |= outputs[step.inputs[0]]
    return frozenset(found)


def output_matches(value: Any, stored: Any) -> bool:
    """Whether an executor output equals a generator file's stored ``_output`` for the same node.

    Sets compare as sets (the file stores sorted lists, :mod:`io` reads them as sorted tuples).
    """
    if isinstance(value, frozenset):
        return isinstance(stored, (tuple, list)) and value == frozenset(stored)
    if isinstance(value, bool) or isinstance(stored, bool):
        return isinstance(value, bool) and isinstance(stored, bool) and value == stored
    return value == stored
