"""PSL facts for many questions at once: one FactStore per chunk, question-scoped constants.

A question contributes its scene's objects (``q17:o3``) and its parse's mentions (``q17:m0``); the
constants of two questions never meet, so grounding one store for a chunk yields a model that is
block-diagonal by construction (one block per question). The predicates, with the rules of
``vqa_adapters/rules/*.psl`` in mind:

=============================  ======================================================================
``attr_o(O, A, V)``            object ``O`` has value ``V`` of attribute ``A`` (1.0 from a scene file;
                               any probability from a noisy perception; absent = 0)
``attr_m(M, A, V)``            mention ``M`` states value ``V`` of attribute ``A`` (from the parser)
``candidate(M, O)``            target: mention ``M`` denotes object ``O`` (every pair of a question)
``consistent(R, O, O1, M, M1)``  relation ``R`` of the question has anchor mention ``M`` and subject
                               mention ``M1``; 1.0 when ``O1`` is ``R`` of ``O`` in the scene, and the
                               0.0 negative examples for every other pair (the paper notes they help)
``relation(R, M, M1)``         the question relates subject ``M1`` to anchor ``M`` by ``R``
``free(M, O)``                 ``M`` is not a union, so any object of its question may be it
                               (every such pair, less the blocked ones)
``level(M, L)``                ``L`` (``"0"`` .. ``"3"``) is how deep a chain of relations hangs off
                               ``M`` as their anchor: 0 for a mention no relation is anchored on,
                               else 1 + the largest level of its subjects (capped at 3)
``member(U, P)``               mention ``U`` ranges over the union of its members ``P`` ("A or B")
``match(M, O)``                ``build_facts(match=True)`` only: the probability that ``O`` has every
                               value ``M`` states, the product of its ``attr_o`` values over them
                               (attributes independent; 1.0 for a mention that states none); every
                               candidate pair that is not blocked
=============================  ======================================================================

With a perception's probabilities, ``consistent`` of a ``same_*`` relation is the probability that
the two objects share the attribute's value, ``sum_v p_O(v) p_O1(v)`` (see
:func:`clevr_object_facts`); spatial relations stay exact.

Atoms are written into the store as integer code arrays (no per-atom Python strings), which is what
makes a chunk of thousands of questions cheap. This module builds facts only: it neither parses
questions nor grounds, solves or reads files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from hlmrf.data.store import FactStore
from hlmrf.errors import DataError

from ..clevr.io import Scene
from ..clevr.parser import QuestionParse
from ..clevr.vocabulary import ATTRIBUTES, ATTRIBUTE_VALUES, RELATIONS

__all__ = [
    "ObjectFacts",
    "FactChunk",
    "PREDICATES",
    "clevr_facts_lookup",
    "clevr_object_facts",
    "relation_key",
    "mention_levels",
    "MAX_LEVEL",
    "build_facts",
]

#: Every predicate the facts declare, with its arity (rule files may use any subset).
PREDICATES: dict[str, int] = {
    "attr_o": 3,
    "attr_m": 3,
    "candidate": 2,
    "consistent": 5,
    "relation": 3,
    "free": 2,
    "level": 2,
    "member": 2,
    "match": 2,
}


@dataclass(frozen=True)
class ObjectFacts:
    """What PSL may know about one scene's objects, independent of the dataset.

    Attributes
    ----------
    values : attribute -> its value vocabulary (column order of ``probs``).
    probs : attribute -> ``(n, k)`` array in [0, 1]: how much each object has each value (one-hot
        for a scene file; a perception model's probabilities otherwise).
    relations : relation key -> ``(n, n)`` array in [0, 1] (bool for exact relations),
        ``rel[i, j]`` = how much object ``j`` is ``key`` of object ``i`` (the orientation of
        CLEVR's ``relationships``).
    centres : ``(n, 2)`` pixel centres (x, y) in the image, for masks.
    radii : ``(n,)`` blob radius in pixels of each object, for masks.
    image_size : (width, height) of the image the centres are in.
    """

    values: Mapping[str, tuple[str, ...]]
    probs: Mapping[str, np.ndarray]
    relations: Mapping[str, np.ndarray]
    centres: np.ndarray = field(compare=False)
    radii: np.ndarray = field(compare=False)
    image_size: tuple[int, int] = (480, 320)

    @property
    def n(self) -> int:
        return len(self.centres)


def relation_key(kind: str, name: str) -> str:
    """The key of a parse relation in :attr:`ObjectFacts.relations` (``left``, ``same_color``)."""
    return f"same_{name}" if kind == "same" else name


_CLEVR_VALUES = {a: tuple(sorted(ATTRIBUTE_VALUES[a])) for a in ATTRIBUTES}


def clevr_object_facts(scene: Scene, probabilities: Mapping[str, np.ndarray] | None = None
                       ) -> ObjectFacts:
    """Object facts of a CLEVR scene.

    Parameters
    ----------
    scene : the scene (its objects' values, ``relationships`` and ``pixel_coords``).
    probabilities : optional ``{attribute: (n, k) array}`` replacing the scene's one-hot values
        for those attributes (columns in sorted value order, ``sorted(ATTRIBUTE_VALUES[a])``), e.g. a
        noisy perception's scores. The ``same_<attribute>`` relation of such an attribute is then
        the probability that two objects share its value, ``sum_v p_i(v) p_j(v)`` (independent
        perceptions; 0 on the diagonal), instead of the argmax scene's yes/no; one-hot rows give
        back the exact relation.

    Notes
    -----
    The blob radius grows with the object's size and shrinks with depth: ``r = s * 10 / depth``
    with ``s`` = 50 px for large and 28 px for small objects (their image radius at depth 10,
    measured on ``CLEVR_val_000000.png``).
    """
    objs = scene.objects
    n = len(objs)
    probs = {}
    for a in ATTRIBUTES:
        vocab = _CLEVR_VALUES[a]
        if probabilities is not None and a in probabilities:
            p = np.asarray(probabilities[a], dtype=np.float64)
            if p.shape != (n, len(vocab)):
                raise DataError(f"probabilities[{a!r}] has shape {p.shape}; scene "
                                 f"{scene.image_index} needs ({n}, {len(vocab)}) in the order {vocab}")
            if not np.all((p >= 0) & (p <= 1)):
                raise DataError(f"probabilities[{a!r}] must lie in [0, 1]")
        else:
            p = np.zeros((n, len(vocab)))
            p[np.arange(n), [vocab.index(getattr(o, a)) for o in objs]] = 1.0
        probs[a] = p
    rels = {}
    for r in RELATIONS:
        m = np.zeros((n, n), dtype=bool)
        for i, js in enumerate(scene.relationships.get(r, ())):
            m[i, list(js)] = True
        rels[r] = m
    for a in ATTRIBUTES:
        if probabilities is not None and a in probabilities:
            same = probs[a] @ probs[a].T
            np.fill_diagonal(same, 0.0)
            rels[f"same_{a}"] = np.clip(same, 0.0, 1.0)  # rows may sum to 1 + rounding
        else:
            v = np.asarray([getattr(o, a) for o in objs])
            rels[f"same_{a}"] = (v[:, None] == v[None, :]) & ~np.eye(n, dtype=bool)
    pix = np.asarray([o.pixel_coords for o in objs], dtype=np.float64).reshape(n, 3)
    base = np.asarray([50.0 if o.size == "large" else 28.0 for o in objs])
    depth = np.maximum(pix[:, 2], 1.0) if n else pix[:, 2]
    return ObjectFacts(_CLEVR_VALUES, probs, rels, pix[:, :2].copy(), base * 10.0 / depth, (480, 320))


@dataclass(frozen=True)
class FactChunk:
    """The facts of a chunk of questions and what is needed to read the answers back.

    Question ``k``'s candidate pairs are ``offsets[k]:offsets[k + 1]`` of the chunk's pair list,
    mention-major (reshape to ``(n_mentions[k], n_objects[k])``); ``pair_target[i]`` is the
    position of pair ``i`` among the ``candidate`` targets, or -1 for a blocked pair (observed 0).
    """

    store: FactStore
    n_mentions: np.ndarray
    n_objects: np.ndarray
    offsets: np.ndarray
    pair_target: np.ndarray
    target_question: np.ndarray
    """``(T,)`` the question of each candidate target (targets are in question order)."""
    target_codes: np.ndarray = field(compare=False)
    """``(T, 2)`` codes of the candidate targets, in the order added (to check the model's index)."""

    def __len__(self) -> int:
        return len(self.n_mentions)

    def scores(self, target_values: np.ndarray) -> list[np.ndarray]:
        """Split the candidate targets' values into one ``(mentions, objects)`` matrix per question."""
        vals = np.r_[np.asarray(target_values, np.float64).ravel(), 0.0]
        full = vals[self.pair_target]  # -1 (blocked) reads the appended 0
        return [full[a:b].reshape(m, o) for a, b, m, o in
                zip(self.offsets[:-1], self.offsets[1:], self.n_mentions, self.n_objects)]


#: Levels above this share its constant (and so its rule weight).
MAX_LEVEL = 3


def mention_levels(parse: QuestionParse) -> list[int]:
    """Each mention's level: 0 if no relation is anchored on it, else 1 + its subjects' largest."""
    subjects: dict[int, list[int]] = {}
    for r in parse.relations:
        subjects.setdefault(r.object, []).append(r.subject)
    memo: dict[int, int] = {}

    def lev(j: int, depth: int = 0) -> int:
        if j not in memo:
            if depth > len(parse.mentions):
                raise DataError(f"the relations of {parse.text!r} form a cycle")
            memo[j] = 1 + max(lev(s, depth + 1) for s in subjects[j]) if j in subjects else 0
        return memo[j]

    return [lev(j) for j in range(len(parse.mentions))]


def build_facts(items: Sequence[tuple[QuestionParse, ObjectFacts]], *, negatives: bool = True,
                block: bool = False, scoped_values: bool = True, match: bool = False,
                prefix: str = "q") -> FactChunk:
    """Facts for a chunk of ``(parse, object facts)`` pairs, one per question, in one store.

    Parameters
    ----------
    items : the questions of the chunk; question ``k`` gets constants ``{prefix}{k}:m{j}`` and
        ``{prefix}{k}:o{i}``. Questions sharing one :class:`ObjectFacts` object (one scene) share
        the work of laying out its facts.
    negatives : also store the 0.0 ``consistent`` atoms (pairs the relation does not hold for).
    block : PSL blocking: a pair (mention, object) where the object has probability 0 for a value
        the mention states is observed ``candidate = 0`` instead of being a target. The hard
        negative-evidence rule of ``default.psl`` pins such a pair to 0 anyway, so its MAP state is
        unchanged and the model much smaller; a program without that rule (``paper.psl``) would
        gain knowledge from blocking, so leave it off there.
    scoped_values : give each question its own value constants (``q17:red``), so a rule that
        joins ``attr_m`` and ``attr_o`` on the value alone (the paper's w1) pairs only a question's
        own mentions and objects; ``False`` shares one constant per value across the chunk (fewer
        constants; right for rules that bind both sides through ``candidate(M, O)``).
    match : also store ``match(M, O)`` (the fact of ``noisy.psl``; off by default because the
        other programs do not read it).
    prefix : the question prefix of constant names.

    Raises
    ------
    KeyError : a parse relation the question's object facts have no matrix for.

    Notes
    -----
    The stages run in this order because constant codes are handed out in it (the codes, and so
    the store, are part of the output): question constants, values, mentions, objects, relation
    atoms, candidate pairs.
    """
    store = FactStore()
    intern = store.constants.intern
    lay = _intern_questions(intern, items, prefix)
    scenes, q_scene = _distinct_scenes(items)
    values = _value_facts(intern, items, scenes, scoped_values, prefix)
    mentions = _mention_facts(intern, items, lay, values, q_scene)
    if len(values.av) > 62:
        raise DataError(f"{len(values.av)} attribute values; blocking supports at most 62")
    attr_o, attr_o_v, o_bits = _object_facts(scenes, q_scene, lay, values)
    consistent, consistent_v = _consistent_facts(mentions.rel_groups, scenes, lay, negatives)
    pairs = _candidate_pairs(lay, o_bits, mentions, block)

    _put(store, "attr_o", attr_o, attr_o_v)
    _put(store, "attr_m", mentions.attr_m)
    _put(store, "consistent", consistent, consistent_v)
    _put(store, "relation", mentions.relation)
    _put(store, "free", pairs.free)
    _put(store, "member", mentions.member)
    _put(store, "level", mentions.level)
    allowed = pairs.allowed
    if match:
        _put(store, "match", pairs.pairs[allowed],
             _match_values(scenes, q_scene, lay, values, mentions, pairs)[allowed])
    targets = pairs.pairs[allowed]
    _put(store, "candidate", pairs.pairs[~allowed], np.zeros(int((~allowed).sum())))
    store.add_target_codes("candidate", targets)
    return FactChunk(store, lay.n_m, lay.n_o, pairs.offsets, pairs.pair_target,
                     pairs.q_of[allowed], targets)


@dataclass(frozen=True)
class _Layout:
    """Where each question's mentions and objects sit in the chunk (codes and rows)."""

    n_m: np.ndarray  # (K,) mentions per question
    n_o: np.ndarray  # (K,) objects per question
    mrow: np.ndarray  # (K + 1,) question k's mentions are rows mrow[k]:mrow[k + 1], chunk-wide
    orow: np.ndarray  # (K + 1,) likewise for objects
    m_code: np.ndarray  # (M,) constant code of each mention row
    o_code: np.ndarray  # (O,) constant code of each object row


def _intern_questions(intern, items, prefix: str) -> _Layout:
    """Stage 1: the question-scoped constants; codes 0..M-1 are the mentions, M.. the objects."""
    K = len(items)
    n_m = np.fromiter((len(p.mentions) for p, _ in items), np.int64, K)
    n_o = np.fromiter((f.n for _, f in items), np.int64, K)
    mrow = np.r_[0, np.cumsum(n_m)].astype(np.int64)
    orow = np.r_[0, np.cumsum(n_o)].astype(np.int64)
    for k in range(K):
        for j in range(n_m[k]):
            intern(f"{prefix}{k}:m{j}")
    for k in range(K):
        for i in range(n_o[k]):
            intern(f"{prefix}{k}:o{i}")
    M, O = int(mrow[-1]), int(orow[-1])
    return _Layout(n_m, n_o, mrow, orow, np.arange(M, dtype=np.int64),
                   np.arange(M, M + O, dtype=np.int64))


def _distinct_scenes(items) -> tuple[list[ObjectFacts], np.ndarray]:
    """The distinct :class:`ObjectFacts` (by identity) and each question's index among them, so
    scenes shared by several questions are laid out once."""
    scene_ids: dict[int, int] = {}
    scenes: list[ObjectFacts] = []
    q_scene = np.empty(len(items), np.int64)
    for k, (_, f) in enumerate(items):
        sid = scene_ids.get(id(f))
        if sid is None:
            sid = scene_ids[id(f)] = len(scenes)
            scenes.append(f)
        q_scene[k] = sid
    return scenes, q_scene


@dataclass
class _Values:
    """``av[(attribute, value)] = (attribute code, value code, bit)``; ``vcode[k, bit]`` is question
    ``k``'s own constant for that value (``None`` unless values are question-scoped). ``av`` may
    still grow while mentions are read (a value no scene lists, with shared values)."""

    av: dict[tuple[str, str], tuple[int, int, int]]
    vcode: np.ndarray | None


def _value_facts(intern, items, scenes: list[ObjectFacts], scoped: bool, prefix: str) -> _Values:
    """Stage 2: each (attribute, value) gets its two constants and a bit (for blocking)."""
    av: dict[tuple[str, str], tuple[int, int, int]] = {}
    for f in scenes:
        for a, vocab in f.values.items():
            for v in vocab:
                if (a, v) not in av:
                    av[(a, v)] = (intern(a), intern(v), len(av))
    if not scoped:
        return _Values(av, None)
    # A mention may state a value no scene vocabulary lists: give it a bit first.
    for parse, _ in items:
        for m in parse.mentions:
            for a in ATTRIBUTES:
                v = getattr(m, a, None)
                if v is not None and (a, v) not in av:
                    av[(a, v)] = (intern(a), intern(v), len(av))
    vals = sorted(av.items(), key=lambda kv: kv[1][2])
    vcode = np.empty((len(items), len(vals)), np.int64)
    for k in range(len(items)):
        for (a, v), (_, _, bit) in vals:
            vcode[k, bit] = intern(f"{prefix}{k}:{v}")
    return _Values(av, vcode)


@dataclass(frozen=True)
class _Mentions:
    """The mention-side atoms (as code rows) and what the later stages need of the parses."""

    attr_m: list[tuple[int, int, int]]
    member: list[tuple[int, int]]
    relation: list[tuple[int, int, int]]
    level: list[tuple[int, int]]
    free_rows: list[int]  # mention rows that are not unions
    req: np.ndarray  # (M,) bits of the values each mention states
    # (scene, relation key) -> [(question, relation code, anchor row, subject row), ...]
    rel_groups: dict[tuple[int, str], list[tuple[int, int, int, int]]]


def _mention_facts(intern, items, lay: _Layout, values: _Values, q_scene: np.ndarray) -> _Mentions:
    """Stage 3: stated values, unions, levels and relations (plain Python over the parses)."""
    av, vcode = values.av, values.vcode
    attr_m, member, relation, level = [], [], [], []
    free_rows = []
    level_codes = [intern(str(i)) for i in range(MAX_LEVEL + 1)]
    req = np.zeros(int(lay.mrow[-1]), np.int64)
    rel_groups: dict[tuple[int, str], list[tuple[int, int, int, int]]] = {}
    rel_codes: dict[str, int] = {}
    for k, (parse, facts) in enumerate(items):
        mf = int(lay.mrow[k])
        for j, lev in enumerate(mention_levels(parse)):
            level.append((mf + j, level_codes[min(lev, MAX_LEVEL)]))
        for j, m in enumerate(parse.mentions):
            bits = 0
            for a in ATTRIBUTES:
                v = getattr(m, a, None)
                if v is not None:
                    got = av.get((a, v))
                    if got is None:
                        got = av[(a, v)] = (intern(a), intern(v), len(av))
                    attr_m.append((mf + j, got[0], got[1] if vcode is None else int(vcode[k, got[2]])))
                    bits |= 1 << got[2]
            req[mf + j] = bits
            if m.union:
                member.extend((mf + j, mf + u) for u in m.union)
            else:
                free_rows.append(mf + j)
        for r in parse.relations:
            key = relation_key(r.kind, r.name)
            if key not in facts.relations:
                raise KeyError(f"question {k}: the scene facts have no relation {key!r} "
                               f"(known: {', '.join(sorted(facts.relations))})")
            rc = rel_codes.get(key)
            if rc is None:
                rc = rel_codes[key] = intern(key)
            relation.append((rc, mf + r.object, mf + r.subject))
            rel_groups.setdefault((int(q_scene[k]), key), []).append((k, rc, mf + r.object, mf + r.subject))
    return _Mentions(attr_m, member, relation, level, free_rows, req, rel_groups)


def _object_facts(scenes: list[ObjectFacts], q_scene: np.ndarray, lay: _Layout, values: _Values
                  ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Stage 4: ``attr_o`` rows and values, and each object row's value bits; laid out per scene
    and broadcast to the questions about it."""
    av, vcode = values.av, values.vcode
    attr_o, attr_o_v = [], []
    o_bits = np.zeros(int(lay.orow[-1]), np.int64)
    for sid, f in enumerate(scenes):
        ks = np.flatnonzero(q_scene == sid)
        first = lay.o_code[lay.orow[ks]]  # each question's first object code
        loc, vals, codes, bitcol, bits = [], [], [], [], np.zeros(f.n, np.int64)
        for a, vocab in f.values.items():
            p = np.asarray(f.probs[a])
            i, j = np.nonzero(p > 0)
            col = np.asarray([av[(a, v)] for v in vocab], np.int64).reshape(-1, 3)
            loc.append(i)
            vals.append(p[i, j])
            codes.append(col[j, :2])
            bitcol.append(col[j, 2])
            np.bitwise_or.at(bits, i, np.left_shift(1, col[j, 2]))
        loc, vals, codes = np.concatenate(loc), np.concatenate(vals), np.concatenate(codes)
        bitcol = np.concatenate(bitcol)
        obj = (first[:, None] + loc[None, :]).ravel()
        if vcode is None:
            vcol = np.tile(codes[:, 1], len(ks))
        else:
            vcol = vcode[ks][:, bitcol].ravel()
        attr_o.append(np.column_stack([obj, np.tile(codes[:, 0], len(ks)), vcol]))
        attr_o_v.append(np.tile(vals, len(ks)))
        o_bits[(lay.orow[ks][:, None] + np.arange(f.n)[None, :]).ravel()] = np.tile(bits, len(ks))
    return attr_o, attr_o_v, o_bits


def _consistent_facts(rel_groups, scenes: list[ObjectFacts], lay: _Layout, negatives: bool
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Stage 5: ``consistent(R, O, O1, M, M1)`` per (scene, relation) group: ``O`` an object of the
    anchor ``M``, ``O1`` of the subject ``M1``; 1.0 where the scene has the relation, 0.0
    otherwise (if ``negatives``)."""
    consistent, consistent_v = [], []
    for (sid, key), group in rel_groups.items():
        mat = np.asarray(scenes[sid].relations[key], dtype=np.float64)
        n = mat.shape[0]
        if negatives:
            o, o1 = np.divmod(np.arange(n * n), n)
        else:
            o, o1 = np.nonzero(mat)
        g = np.asarray(group, np.int64)
        first = lay.o_code[lay.orow[g[:, 0]]][:, None]
        rows = np.stack(np.broadcast_arrays(g[:, 1:2], first + o, first + o1, g[:, 2:3], g[:, 3:4]), -1)
        consistent.append(rows.reshape(-1, 5))
        consistent_v.append(np.tile(mat[o, o1], len(g)))
    return consistent, consistent_v


@dataclass(frozen=True)
class _Pairs:
    """Every (mention, object) pair of each question, mention-major, and which are targets."""

    pairs: np.ndarray  # (P, 2) codes
    allowed: np.ndarray  # (P,) bool: a target (not blocked)
    pair_target: np.ndarray  # (P,) position among the targets, -1 when blocked
    offsets: np.ndarray  # (K + 1,) question k's pairs are offsets[k]:offsets[k + 1]
    q_of: np.ndarray  # (P,) the question of each pair
    free: np.ndarray  # (F, 2) the allowed pairs whose mention is not a union


def _candidate_pairs(lay: _Layout, o_bits: np.ndarray, mentions: _Mentions, block: bool) -> _Pairs:
    """Stage 6: the candidate pairs; with ``block``, a pair whose object lacks a value its mention
    states is not a target."""
    K = len(lay.n_m)
    sizes = lay.n_m * lay.n_o
    offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    q_of = np.repeat(np.arange(K), sizes)
    local = np.arange(int(offsets[-1])) - offsets[q_of]
    no = np.maximum(lay.n_o[q_of], 1)
    pm = lay.mrow[q_of] + local // no
    po = lay.orow[q_of] + local % no
    pairs = np.column_stack([lay.m_code[pm], lay.o_code[po]])
    req = mentions.req
    allowed = (o_bits[po] & req[pm]) == req[pm] if block else np.ones(len(pm), bool)
    pair_target = np.where(allowed, np.cumsum(allowed) - 1, -1)
    free_set = np.zeros(len(req), bool)
    free_set[mentions.free_rows] = True
    return _Pairs(pairs, allowed, pair_target, offsets, q_of, pairs[free_set[pm] & allowed])


def _match_values(scenes: list[ObjectFacts], q_scene: np.ndarray, lay: _Layout,
                  values: _Values, mentions: _Mentions, pairs: _Pairs) -> np.ndarray:
    """``(P,)`` the ``match`` value of every candidate pair: the product, over the values its mention
    states, of its object's probability of the value (0 for a value the scene does not list)."""
    n_bits = len(values.av)
    prob = np.zeros((int(lay.orow[-1]), n_bits))  # object row x value bit
    for sid, f in enumerate(scenes):
        per = np.zeros((f.n, n_bits))
        for a, vocab in f.values.items():
            p = np.asarray(f.probs[a], np.float64)
            for c, v in enumerate(vocab):
                per[:, values.av[(a, v)][2]] = p[:, c]
        for k in np.flatnonzero(q_scene == sid):
            prob[lay.orow[k]:lay.orow[k + 1]] = per
    q_of = pairs.q_of
    local = np.arange(len(q_of)) - pairs.offsets[q_of]
    no = np.maximum(lay.n_o[q_of], 1)
    pm = lay.mrow[q_of] + local // no
    po = lay.orow[q_of] + local % no
    req = mentions.req[pm]
    out = np.ones(len(q_of))
    for bit in range(n_bits):
        has = (req >> bit) & 1 == 1
        if has.any():
            out[has] *= prob[po[has], bit]
    return out


def _put(store: FactStore, name: str, rows, values=None) -> None:
    """Declare ``name`` and add ``rows`` (code tuples or a list of code arrays) as observations."""
    arity = PREDICATES[name]
    if isinstance(rows, list):
        rows = (np.concatenate(rows) if rows and isinstance(rows[0], np.ndarray)
                else np.asarray(rows, np.int64).reshape(-1, arity))
    if values is None:
        values = np.ones(len(rows))
    elif isinstance(values, list):
        values = np.concatenate(values) if values else np.zeros(0)
    store.declare(name, arity)
    store.add_observation_codes(name, np.asarray(rows, dtype=np.int64).reshape(-1, arity), values)


def clevr_facts_lookup(scenes: Mapping[int, Scene]):
    """``facts_of(question_result) -> ObjectFacts``, built once per scene on first use.

    The shape :func:`~vqa_adapters.psl.pipeline.render_question_masks` takes; only the scenes the
    questions are about are ever turned into facts.
    """
    cache: dict[int, ObjectFacts] = {}

    def facts_of(r) -> ObjectFacts:
        f = cache.get(r.image_index)
        if f is None:
            f = cache[r.image_index] = clevr_object_facts(scenes[r.image_index])
        return f

    return facts_of
