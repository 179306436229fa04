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
import math
import os
import stat
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
    "read_json_document",
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


#: CLEVR renders every scene at 480x320; a pixel centre outside it is a corrupt record.
IMAGE_SIZE = (480, 320)


def _show(value: Any, limit: int = 60) -> str:
    """A bounded JSON rendering of ``value`` for messages (a 20 MB string stays one short line)."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected(what: str, value: Any, where: str, path: str | None) -> ClevrDataError:
    return _err(f"{where}: expected {what}, got {_show(value)}", path)


def _obj(value: Any, where: str, path: str | None) -> Mapping[str, Any]:
    if type(value) is dict:  # what JSON gives: skip typing.Mapping's slower isinstance
        return value
    if not isinstance(value, Mapping):
        raise _expected("an object", value, where, path)
    return value


def _list(value: Any, where: str, path: str | None) -> list:
    if not isinstance(value, (list, tuple)):
        raise _expected("a list", value, where, path)
    return list(value)


def _int(value: Any, where: str, path: str | None) -> int:
    # bool is an int in Python but never a CLEVR index; "3" is a string, not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _expected("an integer", value, where, path)
    return value


def _str(value: Any, where: str, path: str | None) -> str:
    if not isinstance(value, str):
        raise _expected("a string", value, where, path)
    return value


def _opt_str(value: Any, where: str, path: str | None) -> str | None:
    return None if value is None else _str(value, where, path)


def _num(value: Any, where: str, path: str | None) -> float:
    """A finite JSON number (``NaN``/``Infinity`` literals, strings and bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _expected("a number", value, where, path)
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise _expected("a finite number", value, where, path)
    return x


def _key(d: Mapping[str, Any], key: str, where: str, path: str | None) -> Any:
    if key not in d:
        raise _err(f"{where}: missing key {key!r}", path)
    return d[key]


def _check_value(attr: str, value: Any, where: str, path: str | None) -> str:
    allowed = ATTRIBUTE_VALUES[attr]
    if not isinstance(value, str) or value not in allowed:
        raise _err(
            f"{where}: unknown {attr} {_show(value)}; expected one of {', '.join(sorted(allowed))}", path
        )
    return value


def _triple(value: Any, name: str, where: str, path: str | None) -> tuple[float, float, float]:
    w = f"{where}.{name}"
    items = _list(value, w, path)
    if len(items) != 3:
        raise _expected("a list of 3 numbers", value, w, path)
    return tuple(_num(v, f"{w}[{k}]", path) for k, v in enumerate(items))  # type: ignore[return-value]


def _pixel_coords(value: Any, where: str, path: str | None) -> tuple[float, float, float]:
    x, y, depth = _triple(value, "pixel_coords", where, path)
    W, H = IMAGE_SIZE
    if not (0.0 <= x <= W and 0.0 <= y <= H):
        raise _err(f"{where}.pixel_coords: centre ({x:g}, {y:g}) lies outside the {W}x{H} CLEVR image", path)
    if depth <= 0.0:
        # The blob radius is size / depth: a depth of 0 or below is a mask over every pixel.
        raise _err(f"{where}.pixel_coords: depth {depth:g} must be > 0 (the camera distance)", path)
    return x, y, depth


# Fast paths. A scene file holds some 10^5 values and a question file 10^6; checking each through
# the helpers above formats its location (an f-string) before knowing whether it is needed, which
# was most of the loading time. The fast paths check the same things with exact types (what JSON
# gives) and return None at the first doubt; the checked path then runs and reports the fault, so
# they change no result and no message (tests/vqa/clevr/test_fast_paths.py runs both).


def _finite(x: Any) -> bool:
    if type(x) is float:
        return math.isfinite(x)
    return type(x) is int and -1e308 < x < 1e308  # a larger int overflows float(): the checked path says so


def _object_fast(i: int, o: Any) -> "SceneObject | None":
    if type(o) is not dict:
        return None
    try:
        values = {a: o[a] for a in ATTRIBUTES}
        pc, c3, rot = o["pixel_coords"], o["3d_coords"], o["rotation"]
    except KeyError:
        return None
    for a, v in values.items():
        if type(v) is not str or v not in ATTRIBUTE_VALUES[a]:
            return None
    if not (type(pc) is list and len(pc) == 3 and type(c3) is list and len(c3) == 3 and _finite(rot)
            and all(map(_finite, pc)) and all(map(_finite, c3))):
        return None
    x, y, depth = (float(v) for v in pc)
    W, H = IMAGE_SIZE
    if not (0.0 <= x <= W and 0.0 <= y <= H and depth > 0.0):
        return None
    return SceneObject(index=i, pixel_coords=(x, y, depth), coords_3d=tuple(float(v) for v in c3),
                       rotation=float(rot), **values)


def _relation_fast(lists: Any, n: int) -> "tuple[tuple[int, ...], ...] | None":
    if type(lists) is not list or len(lists) != n:
        return None
    rows = []
    for js in lists:
        if type(js) is not list:
            return None
        for j in js:
            if type(j) is not int or not 0 <= j < n:
                return None
        rows.append(tuple(js))
    return tuple(rows)


def _program_fast(nodes: Any) -> "tuple[ProgramStep, ...] | None":
    if type(nodes) is not list or not nodes:
        return None
    steps = []
    for k, n in enumerate(nodes):
        if type(n) is not dict:
            return None
        fn = n.get("function", n.get("type"))
        if type(fn) is not str or fn not in FUNCTION_ARITY:
            return None
        inputs = n.get("inputs", [])
        if type(inputs) is not list or len(inputs) != FUNCTION_ARITY[fn]:
            return None
        for i in inputs:
            if type(i) is not int or not 0 <= i < k:
                return None
        values = n.get("value_inputs" if "value_inputs" in n else "side_inputs") or []
        if type(values) is not list:
            return None
        for x in values:
            if type(x) is not str:
                return None
        if fn.startswith("filter_") or fn == "relate":
            if len(values) != 1:
                return None
            if values[0] not in (RELATIONS if fn == "relate" else ATTRIBUTE_VALUES[fn[len("filter_"):]]):
                return None
        elif values:
            return None
        steps.append(_step(fn, tuple(inputs), tuple(values)))
    return tuple(steps)


def scene_from_dict(d: Mapping[str, Any], path: str | None = None, where: str = "scene") -> Scene:
    """Build a :class:`Scene` from one entry of a scene file's ``scenes`` list.

    ``where`` locates the entry in messages (``scenes[3]``); every value is checked against its
    type (an object where an object belongs, finite numbers, integer indices), so a wrongly typed
    file is a :class:`ClevrDataError` naming the entry, never a ``TypeError``.

    Raises
    ------
    ClevrDataError
        On a missing key, a wrongly typed value, an unknown attribute value, a pixel centre outside
        the image or a depth <= 0, or a relation list of the wrong shape.
    """
    d = _obj(d, where, path)
    image_index = _int(_key(d, "image_index", where, path), f"{where}.image_index", path)
    raw_objects = _list(_key(d, "objects", where, path), f"{where}.objects", path)
    objects = []
    for i, o in enumerate(raw_objects):
        fast = _object_fast(i, o)
        if fast is not None:
            objects.append(fast)
            continue
        ow = f"{where}.objects[{i}]"
        o = _obj(o, ow, path)
        values = {a: _check_value(a, _key(o, a, ow, path), f"{ow}.{a}", path) for a in ATTRIBUTES}
        objects.append(SceneObject(
            index=i,
            pixel_coords=_pixel_coords(_key(o, "pixel_coords", ow, path), ow, path),
            coords_3d=_triple(_key(o, "3d_coords", ow, path), "3d_coords", ow, path),
            rotation=_num(_key(o, "rotation", ow, path), f"{ow}.rotation", path),
            **values,
        ))
    # The dataset README calls the key "relations"; the released files use "relationships".
    rel_key = "relationships" if "relationships" in d or "relations" not in d else "relations"
    rel = _obj(_key(d, rel_key, where, path), f"{where}.{rel_key}", path)
    n = len(objects)
    relationships: dict[str, tuple[tuple[int, ...], ...]] = {}
    for name, lists in rel.items():
        fast = _relation_fast(lists, n)
        if fast is not None:
            relationships[name] = fast
            continue
        rw = f"{where}.{rel_key}.{name}"
        lists = _list(lists, rw, path)
        if len(lists) != n:
            raise _err(f"{rw}: must hold one list per object ({n}), got {len(lists)}", path)
        rows = []
        for i, js in enumerate(lists):
            js = _list(js, f"{rw}[{i}]", path)
            for k, j in enumerate(js):
                if not 0 <= _int(j, f"{rw}[{i}][{k}]", path) < n:
                    raise _err(f"{rw}[{i}][{k}]: index {j} outside 0..{n - 1}", path)
            rows.append(tuple(js))
        relationships[name] = tuple(rows)
    missing = [r for r in RELATIONS if r not in relationships]
    if missing:
        raise _err(f"{where}.{rel_key}: lacks {', '.join(missing)}", path)
    return Scene(
        image_index=image_index,
        image_filename=_opt_str(d.get("image_filename"), f"{where}.image_filename", path) or "",
        objects=tuple(objects),
        relationships=MappingProxyType(relationships),
        split=_opt_str(d.get("split"), f"{where}.split", path),
    )


_STEPS: dict = {}
_MAX_STEPS = 200_000
"""Equal program steps are one object (a CLEVR split has a few thousand distinct steps among
millions: 700,000 questions' programs then take a fraction of the memory); up to this many."""


def _step(fn: str, inputs: tuple, values: tuple) -> ProgramStep:
    """The one :class:`ProgramStep` of these fields, keyed by the plain tuple (hashed and compared
    in C, not by the dataclass's Python ``__hash__``/``__eq__``)."""
    key = (fn, inputs, values)
    step = _STEPS.get(key)
    if step is None:
        step = ProgramStep(fn, inputs, values)
        if len(_STEPS) < _MAX_STEPS:
            _STEPS[key] = step
    return step


def program_from_list(
    nodes: Iterable[Mapping[str, Any]], where: str = "program", path: str | None = None
) -> tuple[ProgramStep, ...]:
    """Build and validate a program from its JSON node list (either file format).

    Each node must name one of the 26 CLEVR functions (under ``function`` or ``type``), have that
    function's number of inputs, each an index of an *earlier* node, and carry valid literal
    arguments (under ``value_inputs`` or ``side_inputs``) for ``filter_*`` and ``relate``.
    """
    fast = _program_fast(nodes)
    if fast is not None:
        return fast
    steps = []
    for k, n in enumerate(_list(nodes, where, path)):
        nw = f"{where}[{k}]"
        n = _obj(n, nw, path)
        fn = n.get("function", n.get("type"))
        if not isinstance(fn, str) or fn not in FUNCTION_ARITY:
            raise _err(
                f"{nw}: unknown function {_show(fn)}; expected one of the 26 CLEVR functions "
                f"(scene, filter_*, unique, relate, union, intersect, count, exist, query_*, "
                f"same_*, equal_*, equal_integer, less_than, greater_than)",
                path,
            )
        inputs = _list(n.get("inputs", []), f"{nw}.inputs", path)
        if len(inputs) != FUNCTION_ARITY[fn]:
            raise _err(f"{nw}: {fn} takes {FUNCTION_ARITY[fn]} input(s), got {len(inputs)}", path)
        for i in inputs:
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < k:
                raise _err(
                    f"{nw}: input {_show(i)} is not the index of an earlier node (0..{k - 1})", path
                )
        vkey = "value_inputs" if "value_inputs" in n else "side_inputs"
        values = _list(n.get(vkey) or [], f"{nw}.{vkey}", path)
        for v, x in enumerate(values):
            _str(x, f"{nw}.{vkey}[{v}]", path)
        if fn.startswith("filter_") or fn == "relate":
            if len(values) != 1:
                raise _err(f"{nw}: {fn} needs exactly one value input, got {_show(values)}", path)
            if fn == "relate":
                if values[0] not in RELATIONS:
                    raise _err(
                        f"{nw}: unknown relation {_show(values[0])}; expected one of {', '.join(RELATIONS)}",
                        path,
                    )
            else:
                _check_value(fn[len("filter_"):], values[0], nw, path)
        elif values:
            raise _err(f"{nw}: {fn} takes no value inputs, got {_show(values)}", path)
        steps.append(_step(fn, tuple(inputs), tuple(values)))
    if not steps:
        raise _err(f"{where}: empty program", path)
    return tuple(steps)


def _freeze_output(value: Any) -> Any:
    if isinstance(value, list):
        try:
            return tuple(sorted(value))
        except TypeError:  # mixed types: keep the file's order
            return tuple(value)
    return value


def question_from_dict(d: Mapping[str, Any], path: str | None = None, where: str | None = None) -> Question:
    """Build a :class:`Question` from one entry of a question file's ``questions`` list.

    ``where`` locates the entry in messages (``questions[3]``; default ``question <index>``).
    """
    if where is None:
        qi = d.get("question_index", "?") if isinstance(d, Mapping) else "?"
        where = f"question {qi}"
    d = _obj(d, where, path)
    question_index = _int(_key(d, "question_index", where, path), f"{where}.question_index", path)
    image_index = _int(_key(d, "image_index", where, path), f"{where}.image_index", path)
    text = _str(_key(d, "question", where, path), f"{where}.question", path)
    program = outputs = None
    if d.get("program") is not None:
        program = program_from_list(d["program"], where=f"{where}.program", path=path)
        if any("_output" in n for n in d["program"]):
            outputs = tuple(_freeze_output(n.get("_output")) for n in d["program"])
    answer = None
    if d.get("answer") is not None:
        try:
            answer = normalize_answer(d["answer"])
        except TypeError:
            raise _expected("a string, bool or integer", d["answer"], f"{where}.answer", path) from None
    template = _opt_str(d.get("template_filename"), f"{where}.template_filename", path)
    local = d.get("question_family_index")
    if local is not None:
        local = _int(local, f"{where}.question_family_index", path)
    if template is not None:
        family = global_family_index(template, local)
        template_index = local
    else:
        family = local
        template_index = None
    if family is not None and not 0 <= family < 90:
        raise _err(f"{where}.question_family_index: {family!r} outside 0..89", path)
    return Question(
        question_index=question_index,
        image_index=image_index,
        text=text,
        program=program,
        answer=answer,
        family_index=family,
        split=_opt_str(d.get("split"), f"{where}.split", path),
        image_filename=_opt_str(d.get("image_filename"), f"{where}.image_filename", path),
        template=None if template is None else template.removesuffix(".json"),
        template_index=template_index,
        outputs=outputs,
    )


def read_json_document(path: str | os.PathLike, what: str = "file"):
    """Read one JSON document, turning every way a path or its bytes can be wrong into a
    :class:`ClevrDataError` naming the file (and line): missing, a folder or other non-regular
    file, bytes that are not UTF-8 (a byte-order mark is skipped), invalid JSON, nesting too deep.
    Permission and disk errors stay ``OSError``."""
    p = str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise _err("file not found", p) from None
    except NotADirectoryError:
        raise _err("file not found (a parent is not a folder)", p) from None
    if stat.S_ISDIR(st.st_mode):
        raise _err(f"is a folder; expected a JSON {what}", p)
    if not stat.S_ISREG(st.st_mode):
        raise _err(f"is not a regular file; expected a JSON {what}", p)
    with open(p, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ClevrDataError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", path=p, line=line) from None
    del raw  # the bytes are not needed while parsing (a large file: one copy less at the peak)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClevrDataError(f"not valid JSON: {exc.msg}", path=p, line=exc.lineno) from None
    except RecursionError:
        raise _err("not valid JSON: nested too deeply", p) from None


def _read_json(path: str | Path, key: str) -> list[Any]:
    p = str(path)
    data = read_json_document(p, f"{key} file")
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise _err(f"expected a JSON object with a list under {key!r}", p)
    return data[key]


def load_scenes(path: str | Path) -> dict[int, Scene]:
    """Read a CLEVR scene file; return its scenes keyed by ``image_index`` (in file order)."""
    p = str(path)
    scenes: dict[int, Scene] = {}
    for k, d in enumerate(_read_json(p, "scenes")):
        s = scene_from_dict(d, path=p, where=f"scenes[{k}]")
        if s.image_index in scenes:
            raise _err(f"scenes[{k}]: image_index {s.image_index} appears twice", p)
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
    items = _read_json(p, "questions")
    out = []
    for k in range(len(items)):  # each parsed dict is released once read: the dicts and the
        d, items[k] = items[k], None  # questions are not both whole in memory at once
        out.append(question_from_dict(d, path=p, where=f"questions[{k}]"))
    del items
    questions = tuple(out)
    if scenes is not None:
        check_questions_against_scenes(questions, scenes, path=p)
    return questions
