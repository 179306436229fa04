"""Read CLEVR scene and question files into typed, frozen values.

Accepts the released CLEVR 1.0 format (program node name under ``function``, literal arguments under
``value_inputs``), the question generator's format (``type`` / ``side_inputs`` or ``value_inputs``,
per-node ``_output``, raw answers ``True``/``False``/ints, per-template-file family indices) and the
test split (no program, answer or family). Answers are normalised to CLEVR's strings (``'yes'``,
``'no'``, ``'3'``); generator family indices are mapped to CLEVR's global 0..89 numbering. Every
value is checked against the closed CLEVR vocabulary and every program against the 26 functions, and
a bad file raises :class:`ClevrDataError` naming the file and the scene or question index. This is
the only module of the CLEVR front end that touches files; it does not execute programs or parse
question text.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from .errors import ClevrDataError
from .vocabulary import (
    ATTRIBUTE_VALUES,
    ATTRIBUTES,
    FUNCTION_ARITY,
    RELATIONS,
    global_family_index,
)

__all__ = [
    "SceneObject",
    "Scene",
    "ProgramStep",
    "Question",
    "load_scenes",
    "load_questions",
    "scene_from_dict",
    "question_from_dict",
    "program_from_list",
    "normalize_answer",
    "check_questions_against_scenes",
]


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene; ``index`` is its position in the scene's object list."""

    index: int
    size: str
    color: str
    material: str
    shape: str
    pixel_coords: tuple[float, float, float]
    """(x, y, depth) in the 480x320 image, origin top-left, y down."""
    coords_3d: tuple[float, float, float]
    """The ``3d_coords`` of the file (x, y, z in the scene's world frame)."""
    rotation: float

    def attribute(self, name: str) -> str:
        """Return the value of attribute ``name`` (size, color, material or shape)."""
        if name not in ATTRIBUTE_VALUES:
            raise KeyError(f"unknown attribute {name!r}; expected one of {', '.join(ATTRIBUTES)}")
        return getattr(self, name)


@dataclass(frozen=True)
class Scene:
    """A CLEVR scene: its objects and the spatial relations between them.

    ``relationships[R][i]`` lists the indices ``j`` such that object ``j`` is ``R`` of object ``i``
    (e.g. ``j`` is left of ``i``).
    """

    image_index: int
    image_filename: str
    objects: tuple[SceneObject, ...]
    relationships: Mapping[str, tuple[tuple[int, ...], ...]] = field(hash=False)
    split: str | None = None


@dataclass(frozen=True)
class ProgramStep:
    """One node of a functional program: function name, input node indices, literal arguments."""

    function: str
    inputs: tuple[int, ...]
    value_inputs: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    """A CLEVR question.

    ``program``, ``answer`` and ``family_index`` are ``None`` in the test split. ``family_index`` is
    CLEVR's global family index (0..89); ``template`` and ``template_index`` keep a generator's own
    (file, per-file index) when the file gives them. ``outputs`` holds a generator file's per-node
    ``_output`` values as read (sets as sorted tuples), or ``None``.
    """

    question_index: int
    image_index: int
    text: str
    program: tuple[ProgramStep, ...] | None
    answer: str | None
    family_index: int | None
    split: str | None
    image_filename: str | None = None
    template: str | None = None
    template_index: int | None = None
    outputs: tuple[Any, ...] | None = field(default=None, compare=False)


def normalize_answer(value: Any) -> str:
    """Return CLEVR's string form of an answer: ``True -> 'yes'``, ``False -> 'no'``, ``3 -> '3'``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"an answer must be a string, bool or int, not {type(value).__name__}")


def _err(message: str, path: str | None) -> ClevrDataError:
    return ClevrDataError(message, path=path)


def _check_value(attr: str, value: Any, where: str, path: str | None) -> str:
    allowed = ATTRIBUTE_VALUES[attr]
    if value not in allowed:
        raise _err(
            f"{where}: unknown {attr} {value!r}; expected one of {', '.join(sorted(allowed))}", path
        )
    return value


def _triple(value: Any, name: str, where: str, path: str | None) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise _err(f"{where}: {name} must be a list of 3 numbers, got {value!r}", path)
    try:
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    except (TypeError, ValueError):
        raise _err(f"{where}: {name} must be a list of 3 numbers, got {value!r}", path) from None


def scene_from_dict(d: Mapping[str, Any], path: str | None = None) -> Scene:
    """Build a :class:`Scene` from one entry of a scene file's ``scenes`` list.

    Raises
    ------
    ClevrDataError
        On a missing key, an unknown attribute value or a relation list of the wrong shape.
    """
    where = f"scene {d.get('image_index', '?')}"
    try:
        image_index = int(d["image_index"])
        raw_objects = d["objects"]
    except (KeyError, TypeError, ValueError) as exc:
        raise _err(f"{where}: missing or bad key {exc}", path) from None
    objects = []
    for i, o in enumerate(raw_objects):
        ow = f"{where}, object {i}"
        try:
            values = {a: _check_value(a, o[a], ow, path) for a in ATTRIBUTES}
            obj = SceneObject(
                index=i,
                pixel_coords=_triple(o["pixel_coords"], "pixel_coords", ow, path),
                coords_3d=_triple(o["3d_coords"], "3d_coords", ow, path),
                rotation=float(o["rotation"]),
                **values,
            )
        except KeyError as exc:
            raise _err(f"{ow}: missing key {exc}", path) from None
        objects.append(obj)
    # The dataset README calls the key "relations"; the released files use "relationships".
    rel = d.get("relationships", d.get("relations"))
    if rel is None:
        raise _err(f"{where}: missing key 'relationships'", path)
    n = len(objects)
    relationships: dict[str, tuple[tuple[int, ...], ...]] = {}
    for name, lists in rel.items():
        if not isinstance(lists, list) or len(lists) != n:
            raise _err(f"{where}: relationships[{name!r}] must hold one list per object ({n})", path)
        rows = []
        for i, js in enumerate(lists):
            if any(not isinstance(j, int) or not 0 <= j < n for j in js):
                raise _err(f"{where}: relationships[{name!r}][{i}] has an index outside 0..{n - 1}", path)
            rows.append(tuple(js))
        relationships[name] = tuple(rows)
    missing = [r for r in RELATIONS if r not in relationships]
    if missing:
        raise _err(f"{where}: relationships lacks {', '.join(missing)}", path)
    return Scene(
        image_index=image_index,
        image_filename=str(d.get("image_filename", "")),
        objects=tuple(objects),
        relationships=MappingProxyType(relationships),
        split=d.get("split"),
    )


def program_from_list(
    nodes: Iterable[Mapping[str, Any]], where: str = "program", path: str | None = None
) -> tuple[ProgramStep, ...]:
    """Build and validate a program from its JSON node list (either file format).

    Each node must name one of the 26 CLEVR functions (under ``function`` or ``type``), have that
    function's number of inputs, each an index of an *earlier* node, and carry valid literal
    arguments (under ``value_inputs`` or ``side_inputs``) for ``filter_*`` and ``relate``.
    """
    steps = []
    for k, n in enumerate(nodes):
        nw = f"{where}, node {k}"
        fn = n.get("function", n.get("type"))
        if fn not in FUNCTION_ARITY:
            raise _err(
                f"{nw}: unknown function {fn!r}; expected one of the 26 CLEVR functions "
                f"(scene, filter_*, unique, relate, union, intersect, count, exist, query_*, "
                f"same_*, equal_*, equal_integer, less_than, greater_than)",
                path,
            )
        inputs = n.get("inputs", [])
        if len(inputs) != FUNCTION_ARITY[fn]:
            raise _err(f"{nw}: {fn} takes {FUNCTION_ARITY[fn]} input(s), got {len(inputs)}", path)
        for i in inputs:
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < k:
                raise _err(
                    f"{nw}: input {i!r} is not the index of an earlier node (0..{k - 1})", path
                )
        values = n.get("value_inputs", n.get("side_inputs", [])) or []
        if fn.startswith("filter_") or fn == "relate":
            if len(values) != 1:
                raise _err(f"{nw}: {fn} needs exactly one value input, got {values!r}", path)
            if fn == "relate":
                if values[0] not in RELATIONS:
                    raise _err(
                        f"{nw}: unknown relation {values[0]!r}; expected one of {', '.join(RELATIONS)}",
                        path,
                    )
            else:
                _check_value(fn[len("filter_"):], values[0], nw, path)
        elif values:
            raise _err(f"{nw}: {fn} takes no value inputs, got {values!r}", path)
        steps.append(ProgramStep(fn, tuple(inputs), tuple(str(v) for v in values)))
    if not steps:
        raise _err(f"{where}: empty program", path)
    return tuple(steps)


def _freeze_output(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(sorted(value))
    return value


def question_from_dict(d: Mapping[str, Any], path: str | None = None) -> Question:
    """Build a :class:`Question` from one entry of a question file's ``questions`` list."""
    qi = d.get("question_index", "?")
    where = f"question {qi}"
    try:
        question_index = int(d["question_index"])
        image_index = int(d["image_index"])
        text = str(d["question"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _err(f"{where}: missing or bad key {exc}", path) from None
    program = outputs = None
    if d.get("program") is not None:
        program = program_from_list(d["program"], where=where, path=path)
        if any("_output" in n for n in d["program"]):
            outputs = tuple(_freeze_output(n.get("_output")) for n in d["program"])
    answer = None
    if d.get("answer") is not None:
        try:
            answer = normalize_answer(d["answer"])
        except TypeError as exc:
            raise _err(f"{where}: {exc}", path) from None
    template = d.get("template_filename")
    local = d.get("question_family_index")
    if template is not None:
        family = global_family_index(template, local)
        template_index = local
    else:
        family = local
        template_index = None
    if family is not None and not 0 <= int(family) < 90:
        raise _err(f"{where}: question_family_index {family!r} outside 0..89", path)
    return Question(
        question_index=question_index,
        image_index=image_index,
        text=text,
        program=program,
        answer=answer,
        family_index=None if family is None else int(family),
        split=d.get("split"),
        image_filename=d.get("image_filename"),
        template=None if template is None else str(template).removesuffix(".json"),
        template_index=template_index,
        outputs=outputs,
    )


def _read_json(path: str | Path, key: str) -> list[Any]:
    p = str(path)
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise _err("file not found", p) from None
    except json.JSONDecodeError as exc:
        raise ClevrDataError(f"not valid JSON: {exc.msg}", path=p, line=exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise _err(f"expected a JSON object with a list under {key!r}", p)
    return data[key]


def load_scenes(path: str | Path) -> dict[int, Scene]:
    """Read a CLEVR scene file; return its scenes keyed by ``image_index`` (in file order)."""
    p = str(path)
    scenes: dict[int, Scene] = {}
    for d in _read_json(p, "scenes"):
        s = scene_from_dict(d, path=p)
        if s.image_index in scenes:
            raise _err(f"scene {s.image_index}: image_index appears twice", p)
        scenes[s.image_index] = s
    return scenes


def check_questions_against_scenes(
    questions: Iterable[Question], scenes: Mapping[int, Scene], path: str | None = None
) -> None:
    """Raise :class:`ClevrDataError` for the first question whose ``image_index`` has no scene."""
    for q in questions:
        if q.image_index not in scenes:
            lo, hi = (min(scenes), max(scenes)) if scenes else (None, None)
            raise _err(
                f"question {q.question_index}: image_index {q.image_index} has no scene "
                f"(the scenes given cover image_index {lo}..{hi})",
                path,
            )


def load_questions(
    path: str | Path, scenes: Mapping[int, Scene] | None = None
) -> tuple[Question, ...]:
    """Read a CLEVR question file (released, generator or test format).

    Parameters
    ----------
    path
        The JSON file.
    scenes
        If given, every question's ``image_index`` must have a scene here.
    """
    p = str(path)
    questions = tuple(question_from_dict(d, path=p) for d in _read_json(p, "questions"))
    if scenes is not None:
        check_questions_against_scenes(questions, scenes, path=p)
    return questions
