"""Parse CLEVR questions, from their text or from their gold program, into mentions and relations.

Both parsers return the same value, :class:`QuestionParse`: the *mentions* of the question (each a
``[size] [color] [material] shape`` description with synonyms normalised to CLEVR's values, its
grammatical number, whether the question presupposes it names exactly one object, whether its objects
count as *referred*, and optionally the union of other mentions it ranges over), the *relations*
between mentions (spatial: the objects of mention ``subject`` are ``left``/``right``/``front``/
``behind`` of the object of mention ``object``; same: they are *other* objects with the same
size/color/material/shape), and the logical frame (count, exist, query an attribute, compare two
mentions' attributes, compare two mentions' counts). Several relations on one mention are a
conjunction (an intersection of sets); ``Mention.union`` is the disjunction. :func:`mention_objects`
resolves every mention to the scene objects it denotes by executing the parse directly, which the
PSL stage uses as the M -> objects map and the tests use to check the text parser against the
executed gold programs.

The text parser is a small backtracking recogniser: the question frames (the 90 CLEVR families'
sentence shapes) are data in :data:`FRAMES`, written in a tiny pattern language over normalised
tokens, and noun phrases with their relative clauses are read by recursive descent. It covers the
template phrasings of CLEVR 1.0 (and the tokens ``in the picture`` / ``texture`` of the
single-object set); it does not attempt free-form English, and a question it cannot read yields a
:class:`ParseFailure` carrying the reason, never an exception. Neither parser looks at a scene.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Iterator, Sequence

from .errors import QuestionParseError
from .io import ProgramStep, Scene
from .vocabulary import ATTRIBUTES, ATTRIBUTE_VALUES

__all__ = [
    "QuestionKind",
    "Mention",
    "Relation",
    "QuestionParse",
    "ParseFailure",
    "parse_question",
    "parse_program",
    "mention_objects",
    "referred_mention_objects",
    "parse_signature",
    "require_parse",
    "FRAMES",
]


# --------------------------------------------------------------------------------------------
# The parse value


class QuestionKind(str, Enum):
    """The logical frame of a question (what the answer is computed from)."""

    COUNT = "count"
    """How many objects the single target mention denotes."""
    EXIST = "exist"
    """Whether the single target mention denotes any object."""
    QUERY = "query"
    """The ``attribute`` of the single (unique) target."""
    COMPARE_ATTRIBUTE = "compare_attribute"
    """Whether the two (unique) targets have equal ``attribute``."""
    COMPARE_COUNT = "compare_count"
    """``comparator`` (equal, less, greater) between the two targets' counts."""


@dataclass(frozen=True)
class Mention:
    """A noun phrase of the question and the attribute values it states.

    An attribute left ``None`` is unconstrained (``thing``/``object`` leave ``shape`` ``None``).
    """

    index: int
    size: str | None = None
    color: str | None = None
    material: str | None = None
    shape: str | None = None
    plural: bool = False
    """Grammatical number in the text (``cubes``); a program parse sets it for count/compare sets."""
    unique: bool = False
    """The question presupposes it names exactly one object (a ``unique`` node in the program)."""
    referred: bool = True
    """Its objects are among the question's referred objects (false for the members of a union)."""
    union: tuple[int, ...] = ()
    """If not empty, the mention ranges over the union of these mentions' objects ("either A or B")."""
    other: bool = False
    """Stated with other/another/else (informational: a ``same`` relation already excludes)."""
    span: tuple[int, int] | None = field(default=None, compare=False)
    """Character offsets [start, end) of the mention's head words in the question text."""
    node: int | None = field(default=None, compare=False)
    """The program node whose output set this mention denotes (program parses only)."""

    def values(self) -> dict[str, str]:
        """The stated attribute values, as ``{attribute: value}``."""
        return {a: getattr(self, a) for a in ATTRIBUTES if getattr(self, a) is not None}


@dataclass(frozen=True)
class Relation:
    """A relation between two mentions.

    ``kind == "spatial"``: each object of ``subject`` is ``name`` (left, right, front, behind) of
    the object of ``object``. ``kind == "same"``: each object of ``subject`` is another object with
    the same ``name`` (size, color, material, shape) as the object of ``object``.
    """

    kind: str
    name: str
    subject: int
    object: int


@dataclass(frozen=True)
class QuestionParse:
    """A question read into mentions, relations and a logical frame.

    ``targets`` are the mentions the answer is computed from (one, or two for comparisons);
    ``attribute`` is the queried or compared attribute; ``comparator`` is ``"equal"``, ``"less"``
    or ``"greater"`` for comparisons. ``source`` is ``"text"`` or ``"program"``.
    """

    text: str
    kind: QuestionKind
    mentions: tuple[Mention, ...]
    relations: tuple[Relation, ...]
    targets: tuple[int, ...]
    attribute: str | None = None
    comparator: str | None = None
    source: str = "text"

    def relations_of(self, subject: int) -> tuple[Relation, ...]:
        """The relations whose subject is mention ``subject``."""
        return tuple(r for r in self.relations if r.subject == subject)


@dataclass(frozen=True)
class ParseFailure:
    """A question the parser could not read, and why."""

    text: str
    reason: str
    source: str = "text"
    position: int | None = None
    """Character offset where reading stopped, when known."""


def require_parse(result: QuestionParse | ParseFailure) -> QuestionParse:
    """Return a parse, or raise :class:`QuestionParseError` carrying a failure's reason."""
    if isinstance(result, ParseFailure):
        raise QuestionParseError(result.reason, text=result.text)
    return result


# --------------------------------------------------------------------------------------------
# Lexicon (synonyms of the CLEVR generator, normalised to the dataset's values)

_SIZE = {"big": "large", "large": "large", "small": "small", "tiny": "small"}
_COLOR = {c: c for c in ATTRIBUTE_VALUES["color"]}
_MATERIAL = {"metal": "metal", "metallic": "metal", "shiny": "metal", "rubber": "rubber", "matte": "rubber"}
_ADJECTIVES: dict[str, tuple[str, str]] = {
    **{w: ("size", v) for w, v in _SIZE.items()},
    **{w: ("color", v) for w, v in _COLOR.items()},
    **{w: ("material", v) for w, v in _MATERIAL.items()},
}
_NOUN_SHAPES = {
    "thing": None, "object": None, "sphere": "sphere", "ball": "sphere",
    "cube": "cube", "block": "cube", "cylinder": "cylinder",
}
#: noun token -> (shape or None, plural)
_NOUNS: dict[str, tuple[str | None, bool]] = {
    **{w: (s, False) for w, s in _NOUN_SHAPES.items()},
    **{w + "s": (s, True) for w, s in _NOUN_SHAPES.items()},
}
#: attribute names as questions say them
_ATTRIBUTE_WORDS = {
    "size": "size", "color": "color", "colour": "color", "material": "material",
    "texture": "material", "shape": "shape",
}
#: spatial relation phrases (token tuples) -> relation
_SPATIAL: tuple[tuple[tuple[str, ...], str], ...] = (
    *((("on", "the", r, "side", "of"), r) for r in ("left", "right")),
    *((("to", "the", r, "of"), r) for r in ("left", "right")),
    *(((r, "of"), r) for r in ("left", "right")),
    (("in", "front", "of"), "front"),
    (("behind",), "behind"),
)
#: relative-clause openers, longest first; an empty lead is allowed only before a spatial phrase
#: or the self-marking ``of the same`` / ``made of the same``.
_LEADS: tuple[tuple[str, ...], ...] = (
    ("that", "is"), ("that", "are"), ("that", "has"), ("that", "have"),
    ("which", "is"), ("which", "are"), ("are", "there"),
    ("is",), ("are",), ("has",), ("have",), ("that",), (),
)


# --------------------------------------------------------------------------------------------
# Question frames, as data. Pattern language: words match tokens; NP:x reads a mention into slot x;
# ATTR reads an attribute name; [..] is optional; (a | b c) is a choice. Sentence separators
# (; , .) are all read as ';' and the final '?' is dropped before matching.


@dataclass(frozen=True)
class Frame:
    """One question shape: its pattern and how its slots map to a :class:`QuestionParse`."""

    pattern: str
    kind: QuestionKind
    targets: tuple[str, ...]
    attribute: str | None = None
    """Fixed attribute, or ``"ATTR"`` to take it from the ATTR slot."""
    comparator: str | None = None
    union: tuple[str, str] | None = None
    antecedent: str | None = None
    """Slot that ``it``/``its`` refers to."""


_K = QuestionKind
_HOW_MANY = "(how many | what number of)"
FRAMES: tuple[Frame, ...] = (
    # counts (zero/one/two/three hop, same_relate, single_and)
    Frame(f"there is NP:x ; {_HOW_MANY} NP:t [are there]", _K.COUNT, ("t",), antecedent="x"),
    Frame(f"{_HOW_MANY} NP:t are [either] NP:a or NP:b", _K.COUNT, ("t",), union=("a", "b")),
    Frame(f"{_HOW_MANY} NP:t [are there]", _K.COUNT, ("t",)),
    # existence
    Frame("there is NP:x ; (are there | is there) NP:t", _K.EXIST, ("t",), antecedent="x"),
    Frame("(are there | is there) NP:t", _K.EXIST, ("t",)),
    Frame("(are | is) NP:t visible", _K.EXIST, ("t",)),
    # comparisons of counts
    Frame("are there (an equal | the same) number of NP:a and NP:b", _K.COMPARE_COUNT, ("a", "b"), comparator="equal"),
    Frame("is the number of NP:a the same as the number of NP:b", _K.COMPARE_COUNT, ("a", "b"), comparator="equal"),
    Frame("are there fewer NP:a than NP:b", _K.COMPARE_COUNT, ("a", "b"), comparator="less"),
    Frame("is the number of NP:a less than the number of NP:b", _K.COMPARE_COUNT, ("a", "b"), comparator="less"),
    Frame("are there more NP:a than NP:b", _K.COMPARE_COUNT, ("a", "b"), comparator="greater"),
    Frame("is the number of NP:a greater than the number of NP:b", _K.COMPARE_COUNT, ("a", "b"), comparator="greater"),
    # comparisons of attributes
    Frame("there is NP:a ; does it have the same ATTR as NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal", antecedent="a"),
    Frame("there is NP:a ; is it the same ATTR as NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal", antecedent="a"),
    Frame("there is NP:a ; is its ATTR the same as [the ATTR of] NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal", antecedent="a"),
    Frame("there is NP:a ; is it made of the same material as NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "material", "equal", antecedent="a"),
    Frame("do NP:a and NP:b have the same ATTR", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal"),
    Frame("are NP:a and NP:b made of the same material", _K.COMPARE_ATTRIBUTE, ("a", "b"), "material", "equal"),
    Frame("are NP:a and NP:b the same ATTR", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal"),
    Frame("is the ATTR of NP:a the same as [the ATTR of] NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal"),
    Frame("does NP:a have the same ATTR as NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal"),
    Frame("is NP:a made of the same material as NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "material", "equal"),
    Frame("is NP:a the same ATTR as NP:b", _K.COMPARE_ATTRIBUTE, ("a", "b"), "ATTR", "equal"),
    # attribute queries
    Frame("there is NP:t ; what ATTR is it", _K.QUERY, ("t",), "ATTR", antecedent="t"),
    Frame("there is NP:t ; what is its ATTR", _K.QUERY, ("t",), "ATTR", antecedent="t"),
    Frame("there is NP:t ; what is the ATTR of it", _K.QUERY, ("t",), "ATTR", antecedent="t"),
    Frame("there is NP:t ; how big is it", _K.QUERY, ("t",), "size", antecedent="t"),
    Frame("there is NP:t ; what is it made of", _K.QUERY, ("t",), "material", antecedent="t"),
    Frame("there is NP:t ; what ATTR is it made of", _K.QUERY, ("t",), "ATTR", antecedent="t"),
    Frame("what ATTR is NP:t made of", _K.QUERY, ("t",), "ATTR"),
    Frame("what ATTR is NP:t", _K.QUERY, ("t",), "ATTR"),
    Frame("what is the ATTR of NP:t", _K.QUERY, ("t",), "ATTR"),
    Frame("NP:t is made of what ATTR", _K.QUERY, ("t",), "ATTR"),
    Frame("NP:t (has | is) what ATTR", _K.QUERY, ("t",), "ATTR"),
    Frame("how big is NP:t", _K.QUERY, ("t",), "size"),
    Frame("what is NP:t made of", _K.QUERY, ("t",), "material"),
)


def _compile(pattern: str) -> tuple:
    """Compile a frame pattern into nested element tuples."""
    toks = re.findall(r"\[|\]|\(|\)|\||[^\s\[\]()|]+", pattern)
    pos = 0

    def seq(stop: set[str]) -> tuple:
        nonlocal pos
        out: list = []
        while pos < len(toks) and toks[pos] not in stop:
            t = toks[pos]
            pos += 1
            if t == "[":
                inner = seq({"]"})
                pos += 1
                out.append(("opt", inner))
            elif t == "(":
                alts = [seq({"|", ")"})]
                while toks[pos] == "|":
                    pos += 1
                    alts.append(seq({"|", ")"}))
                pos += 1
                out.append(("alt", tuple(alts)))
            elif t.startswith("NP:"):
                out.append(("np", t[3:]))
            elif t == "ATTR":
                out.append(("attr",))
            else:
                out.append(("lit", t))
        return tuple(out)

    return seq(set())


_COMPILED = tuple((f, _compile(f.pattern)) for f in FRAMES)
_KNOWN_WORDS = frozenset(
    set(_ADJECTIVES) | set(_NOUNS) | set(_ATTRIBUTE_WORDS)
    | {w for phrase, _ in _SPATIAL for w in phrase}
    | {w for lead in _LEADS for w in lead}
    | {w for f in FRAMES for w in re.findall(r"[a-z]+", f.pattern) if w not in ("np", "attr")}
    | {"the", "a", "an", "any", "other", "another", "anything", "something", "else", "both",
       "either", "in", "picture", "same", "as", "of", "made", "it", "its", "and", "or", ";"}
)


# --------------------------------------------------------------------------------------------
# Text parser internals: noun-phrase trees, then conversion to mentions


@dataclass(frozen=True)
class _Head:
    values: tuple[tuple[str, str], ...]
    plural: bool
    other: bool
    span: tuple[int, int]


@dataclass(frozen=True)
class _NP:
    head: _Head
    mods: tuple["_Mod", ...] = ()


@dataclass(frozen=True)
class _It:
    span: tuple[int, int]


@dataclass(frozen=True)
class _Mod:
    kind: str
    name: str
    obj: Any  # _NP or _It


class _Reader:
    """Backtracking reader over one question's tokens (memoised per position)."""

    def __init__(self, words: list[str], spans: list[tuple[int, int]]):
        self.w = words
        self.spans = spans
        self.n = len(words)
        self.furthest = 0
        self._np_memo: dict[int, list] = {}
        self._mod_memo: dict[int, list] = {}

    def _at(self, i: int, word: str) -> bool:
        if i < self.n and self.w[i] == word:
            return True
        self.furthest = max(self.furthest, i)
        return False

    def _phrase(self, i: int, phrase: Sequence[str]) -> int | None:
        for k, word in enumerate(phrase):
            if not self._at(i + k, word):
                return None
        return i + len(phrase)

    # noun phrases -------------------------------------------------------------------------
    def head(self, i: int) -> list[tuple[_Head, int]]:
        start = i
        other = False
        if i < self.n and self.w[i] in ("the", "a", "an", "any"):
            i += 1
        if i < self.n and self.w[i] in ("other", "another"):
            other = True
            i += 1
        if i < self.n and self.w[i] in ("anything", "something"):
            i += 1
            if i < self.n and self.w[i] == "else":
                other = True
                i += 1
            return [(_Head((), False, other, (self.spans[start][0], self.spans[i - 1][1])), i)]
        values: dict[str, str] = {}
        while i < self.n and self.w[i] in _ADJECTIVES:
            attr, value = _ADJECTIVES[self.w[i]]
            if values.get(attr, value) != value:
                return []  # "red blue cube": two values of one attribute
            values[attr] = value
            i += 1
        if i >= self.n or self.w[i] not in _NOUNS:
            self.furthest = max(self.furthest, i)
            return []
        shape, plural = _NOUNS[self.w[i]]
        if shape is not None:
            values["shape"] = shape
        i += 1
        end = self.spans[i - 1][1]
        j = self._phrase(i, ("in", "the", "picture"))
        if j is not None:
            i = j
        ordered = tuple((a, values[a]) for a in ATTRIBUTES if a in values)
        return [(_Head(ordered, plural, other, (self.spans[start][0], end)), i)]

    def np(self, i: int) -> list[tuple[_NP, int]]:
        if i in self._np_memo:
            return self._np_memo[i]
        out: list[tuple[_NP, int]] = []
        for h, j in self.head(i):
            for mods, k in self.modifiers(j):
                out.append((_NP(h, mods), k))
            out.append((_NP(h), j))
        self._np_memo[i] = out
        return out

    def object_np(self, i: int) -> list[tuple[Any, int]]:
        if i < self.n and self.w[i] == "it":
            return [(_It(self.spans[i]), i + 1)]
        return self.np(i)

    # relative clauses ---------------------------------------------------------------------
    def relation(self, i: int, bare: bool) -> list[tuple[_Mod, int]]:
        """Spatial or same-attribute phrase and its object; ``bare``: no lead word before it."""
        out: list[tuple[_Mod, int]] = []
        for phrase, rel in _SPATIAL:
            j = self._phrase(i, phrase)
            if j is not None:
                out += [(_Mod("spatial", rel, o), k) for o, k in self.object_np(j)]
        for prefix, needs_lead in ((("made", "of", "the", "same"), False), (("of", "the", "same"), False),
                                   (("the", "same"), True)):
            if needs_lead and bare:
                continue
            j = self._phrase(i, prefix)
            if j is None or j >= self.n or self.w[j] not in _ATTRIBUTE_WORDS:
                continue
            attr = _ATTRIBUTE_WORDS[self.w[j]]
            if prefix[0] == "made" and attr != "material":
                continue
            if not self._at(j + 1, "as"):
                continue
            out += [(_Mod("same", attr, o), k) for o, k in self.object_np(j + 2)]
        return out

    def clause(self, i: int) -> list[tuple[_Mod, int]]:
        out: list[tuple[_Mod, int]] = []
        for lead in _LEADS:
            j = self._phrase(i, lead) if lead else i
            if j is None:
                continue
            if j < self.n and self.w[j] == "both":
                j += 1
            out += self.relation(j, bare=not lead)
        return out

    def modifiers(self, i: int) -> list[tuple[tuple[_Mod, ...], int]]:
        if i in self._mod_memo:
            return self._mod_memo[i]
        out: list[tuple[tuple[_Mod, ...], int]] = []
        for m1, j in self.clause(i):
            if self._at(j, "and"):
                for m2, k in self.clause(j + 1):
                    out.append(((m1, m2), k))
            out.append(((m1,), j))
        self._mod_memo[i] = out
        return out

    # frames -------------------------------------------------------------------------------
    def match(self, elems: tuple, i: int, env: dict) -> Iterator[tuple[int, dict]]:
        if not elems:
            yield i, env
            return
        e, rest = elems[0], elems[1:]
        kind = e[0]
        if kind == "lit":
            if self._at(i, e[1]):
                yield from self.match(rest, i + 1, env)
        elif kind == "np":
            for node, j in self.np(i):
                yield from self.match(rest, j, {**env, e[1]: node})
        elif kind == "attr":
            if i < self.n and self.w[i] in _ATTRIBUTE_WORDS:
                attr = _ATTRIBUTE_WORDS[self.w[i]]
                if env.get("ATTR", attr) == attr:
                    yield from self.match(rest, i + 1, {**env, "ATTR": attr})
            else:
                self.furthest = max(self.furthest, i)
        elif kind == "opt":
            for j, env2 in self.match(e[1], i, env):
                yield from self.match(rest, j, env2)
            yield from self.match(rest, i, env)
        elif kind == "alt":
            for alt in e[1]:
                for j, env2 in self.match(alt, i, env):
                    yield from self.match(rest, j, env2)


class _Builder:
    """Allocates mentions and relations in pre-order."""

    def __init__(self):
        self.mentions: list[Mention | None] = []
        self.relations: list[Relation] = []

    def reserve(self) -> int:
        self.mentions.append(None)
        return len(self.mentions) - 1


def _build(frame: Frame, env: dict, text: str) -> QuestionParse | None:
    """Turn a frame match into a parse; ``None`` if it uses ``it`` without an antecedent."""
    b = _Builder()
    indices: dict[str, int] = {}
    antecedent: list[int] = []

    def add(np: _NP, unique: bool, referred: bool) -> int | None:
        i = b.reserve()
        for mod in np.mods:
            if isinstance(mod.obj, _It):
                if not antecedent:
                    return None
                j = antecedent[0]
            else:
                j = add(mod.obj, True, True)
                if j is None:
                    return None
            b.relations.append(Relation(mod.kind, mod.name, i, j))
        h = np.head
        b.mentions[i] = Mention(
            index=i, **dict(h.values), plural=h.plural, unique=unique, referred=referred,
            other=h.other, span=h.span,
        )
        return i

    unique_targets = frame.kind in (_K.QUERY, _K.COMPARE_ATTRIBUTE)
    if frame.antecedent is not None:
        x = add(env[frame.antecedent], True, True)
        if x is None:
            return None
        indices[frame.antecedent] = x
        antecedent.append(x)
    for slot in frame.targets:
        if slot not in indices:
            i = add(env[slot], unique_targets, True)
            if i is None:
                return None
            indices[slot] = i
    if frame.union is not None:
        members = []
        for slot in frame.union:
            m = add(env[slot], False, False)
            if m is None:
                return None
            members.append(m)
        t = indices[frame.targets[0]]
        b.mentions[t] = replace(b.mentions[t], union=tuple(members))
    attribute = env.get("ATTR") if frame.attribute == "ATTR" else frame.attribute
    return QuestionParse(
        text=text,
        kind=frame.kind,
        mentions=tuple(b.mentions),  # type: ignore[arg-type]
        relations=tuple(b.relations),
        targets=tuple(indices[s] for s in frame.targets),
        attribute=attribute,
        comparator=frame.comparator,
        source="text",
    )


_TOKEN = re.compile(r"[A-Za-z]+|[;?.,!]")


def parse_question(text: str) -> QuestionParse | ParseFailure:
    """Parse CLEVR question text into mentions, relations and a frame.

    Returns
    -------
    QuestionParse or ParseFailure
        A failure carries the reason (an unknown word, or where no question shape fits) and the
        character position; this function does not raise on any string input.
    """
    if not isinstance(text, str):
        return ParseFailure(str(text), f"question text must be a string, not {type(text).__name__}")
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _TOKEN.finditer(text):
        t = m.group().lower()
        words.append(";" if t in (",", ".", "!") else t)
        spans.append(m.span())
    while words and words[-1] in (";", "?"):
        words.pop()
        spans.pop()
    if not words:
        return ParseFailure(text, "empty question", position=0)
    for w, s in zip(words, spans):
        if w not in _KNOWN_WORDS:
            return ParseFailure(text, f"unknown word {text[s[0]:s[1]]!r}", position=s[0])
    reader = _Reader(words, spans)
    for frame, elems in _COMPILED:
        for end, env in reader.match(elems, 0, {}):
            if end != len(words):
                reader.furthest = max(reader.furthest, end)
                continue
            parse = _build(frame, env, text)
            if parse is not None:
                return parse
    k = min(reader.furthest, len(words) - 1)
    return ParseFailure(
        text,
        f"no CLEVR question shape fits; reading stopped at {text[spans[k][0]:spans[k][1]]!r}",
        position=spans[k][0],
    )


# --------------------------------------------------------------------------------------------
# Program parser


class _ProgramUnsupported(Exception):
    pass


def parse_program(program: Sequence[ProgramStep], text: str = "") -> QuestionParse | ParseFailure:
    """Read mentions and relations from a gold CLEVR program (the upper bound for the text parser).

    Each maximal chain of ``filter_*`` nodes over ``scene``, ``relate``, ``same_*``, ``union`` or
    ``intersect`` becomes a mention; ``relate(unique(M'))`` becomes a spatial relation to ``M'``,
    ``same_X(unique(M'))`` a same relation, ``intersect`` merges both sides into one mention and
    ``union`` gives the mention a union of two non-referred member mentions. ``Mention.node`` is the
    program node whose output the mention denotes.
    """
    steps = list(program)
    b = _Builder()

    def fn(k: int) -> str:
        return steps[k].function

    def describe(k: int) -> tuple[dict[str, str], list[tuple[str, str, int]], list[tuple[int, int]]]:
        f = fn(k)
        if f.startswith("filter_"):
            values, rels, unions = describe(steps[k].inputs[0])
            attr, value = f[len("filter_"):], steps[k].value_inputs[0]
            if values.get(attr, value) != value:
                raise _ProgramUnsupported(f"node {k}: filters {attr} to two values")
            return {**values, attr: value}, rels, unions
        if f == "scene":
            return {}, [], []
        if f == "relate" or f.startswith("same_"):
            u = steps[k].inputs[0]
            if fn(u) != "unique":
                raise _ProgramUnsupported(f"node {k}: {f} of {fn(u)}, expected of unique")
            if f == "relate":
                return {}, [("spatial", steps[k].value_inputs[0], steps[u].inputs[0])], []
            return {}, [("same", f[len("same_"):], steps[u].inputs[0])], []
        if f == "intersect":
            a, b2 = (describe(i) for i in steps[k].inputs)
            values = dict(a[0])
            for attr, value in b2[0].items():
                if values.get(attr, value) != value:
                    raise _ProgramUnsupported(f"node {k}: intersects two values of {attr}")
                values[attr] = value
            return values, a[1] + b2[1], a[2] + b2[2]
        if f == "union":
            return {}, [], [tuple(steps[k].inputs)]  # type: ignore[list-item]
        raise _ProgramUnsupported(f"node {k}: {f} where a set of objects was expected")

    def add(k: int, unique: bool, referred: bool, plural: bool) -> int:
        values, rels, unions = describe(k)
        if len(unions) > 1:
            raise _ProgramUnsupported(f"node {k}: an intersection of two unions")
        i = b.reserve()
        for kind, name, obj in rels:
            j = add(obj, True, True, False)
            b.relations.append(Relation(kind, name, i, j))
        members: tuple[int, ...] = ()
        if unions:
            members = tuple(add(m, False, False, True) for m in unions[0])
        b.mentions[i] = Mention(
            index=i, **values, plural=plural, unique=unique, referred=referred, union=members,
            other=any(kind == "same" for kind, _, _ in rels), node=k,
        )
        return i

    def unique_input(k: int) -> int:
        if fn(k) != "unique":
            raise _ProgramUnsupported(f"node {k}: {fn(k)} where unique was expected")
        return steps[k].inputs[0]

    try:
        if not steps:
            raise _ProgramUnsupported("empty program")
        root = len(steps) - 1
        f = fn(root)
        ins = steps[root].inputs
        attribute = comparator = None
        if f in ("count", "exist"):
            kind = _K.COUNT if f == "count" else _K.EXIST
            targets = (add(ins[0], False, True, f == "count"),)
        elif f.startswith("query_"):
            kind, attribute = _K.QUERY, f[len("query_"):]
            targets = (add(unique_input(ins[0]), True, True, False),)
        elif f.startswith("equal_") and f != "equal_integer":
            kind, attribute, comparator = _K.COMPARE_ATTRIBUTE, f[len("equal_"):], "equal"
            ts = []
            for q in ins:
                if fn(q) != f"query_{attribute}":
                    raise _ProgramUnsupported(f"node {q}: {fn(q)} under {f}")
                ts.append(add(unique_input(steps[q].inputs[0]), True, True, False))
            targets = tuple(ts)
        elif f in ("equal_integer", "less_than", "greater_than"):
            kind = _K.COMPARE_COUNT
            comparator = {"equal_integer": "equal", "less_than": "less", "greater_than": "greater"}[f]
            ts = []
            for q in ins:
                if fn(q) != "count":
                    raise _ProgramUnsupported(f"node {q}: {fn(q)} under {f}, expected count")
                ts.append(add(steps[q].inputs[0], False, True, True))
            targets = tuple(ts)
        else:
            raise _ProgramUnsupported(f"the program ends in {f}, which gives no answer")
    except _ProgramUnsupported as exc:
        return ParseFailure(text, f"unsupported program: {exc}", source="program")
    except (IndexError, KeyError) as exc:
        return ParseFailure(text, f"malformed program: {exc!r}", source="program")
    return QuestionParse(
        text=text, kind=kind, mentions=tuple(b.mentions),  # type: ignore[arg-type]
        relations=tuple(b.relations), targets=targets, attribute=attribute,
        comparator=comparator, source="program",
    )


# --------------------------------------------------------------------------------------------
# Resolution against a scene, and a canonical form for comparing parses


def mention_objects(parse: QuestionParse, scene: Scene) -> tuple[frozenset[int], ...]:
    """Resolve every mention to the scene objects it denotes, by executing the parse.

    A mention denotes the objects that have its stated values, lie in the union of its ``union``
    members (if any), and satisfy each of its relations: spatial ``R`` to mention ``j`` keeps the
    objects that are ``R`` of some object of ``j``; same ``X`` keeps the *other* objects sharing
    ``X`` with some object of ``j``. Uniqueness is not enforced (a relation to a mention denoting
    several objects reads as "some of them"); ``result[i]`` is mention ``i``'s set.
    """
    objs = scene.objects
    memo: dict[int, frozenset[int]] = {}
    active: set[int] = set()
    subjects: dict[int, list[Relation]] = {}
    for r in parse.relations:
        subjects.setdefault(r.subject, []).append(r)

    def den(i: int) -> frozenset[int]:
        if i in memo:
            return memo[i]
        if i in active:
            raise QuestionParseError(f"mention {i} depends on itself through its relations or union")
        active.add(i)
        m = parse.mentions[i]
        vals = m.values()
        s = {o.index for o in objs if all(getattr(o, a) == v for a, v in vals.items())}
        if m.union:
            s &= set().union(*(den(u) for u in m.union))
        for r in subjects.get(i, ()):
            anchor = den(r.object)
            if r.kind == "spatial":
                s &= set().union(*(scene.relationships[r.name][o] for o in anchor)) if anchor else set()
            else:
                keep = set()
                for o in anchor:
                    ref = getattr(objs[o], r.name)
                    keep |= {p.index for p in objs if p.index != o and getattr(p, r.name) == ref}
                s &= keep
        active.discard(i)
        memo[i] = frozenset(s)
        return memo[i]

    return tuple(den(i) for i in range(len(parse.mentions)))


def referred_mention_objects(parse: QuestionParse, scene: Scene) -> frozenset[int]:
    """The union of the objects of every referred mention (compare with ``referred_objects``)."""
    sets = mention_objects(parse, scene)
    return frozenset().union(*(s for m, s in zip(parse.mentions, sets) if m.referred))


def parse_signature(parse: QuestionParse) -> tuple:
    """A canonical, order-free form of a parse (mention numbering, relation order and the
    grammatical number do not matter), so that a text parse and a program parse of the same
    question compare equal exactly when they say the same thing."""
    subjects: dict[int, list[Relation]] = {}
    for r in parse.relations:
        subjects.setdefault(r.subject, []).append(r)

    def sig(i: int) -> tuple:
        m = parse.mentions[i]
        rels = sorted((r.kind, r.name, sig(r.object)) for r in subjects.get(i, ()))
        return (
            tuple((a, getattr(m, a) or "") for a in ATTRIBUTES),
            m.unique, m.referred,
            tuple(sorted(sig(u) for u in m.union)),
            tuple(rels),
        )

    return (
        parse.kind.value, parse.attribute or "", parse.comparator or "",
        tuple(sig(t) for t in parse.targets),
    )
