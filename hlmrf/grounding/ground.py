"""Ground a rule program against a fact store into an :class:`~hlmrf.model.HLMRF`.

PSL's semantics: a logical rule's clause becomes the Lukasiewicz hinge
``max(0, sum_neg y - sum_pos y - (#neg - 1))``; observed atoms fold into the constant; groundings
that are fully observed or can never be violated (``x | !x``, a head observed true) are dropped; a
clause of a single literal grounds to a linear term. Arithmetic rules ground one row per
substitution of their non-summation variables (a weighted ``=`` to two hinges); a summation atom
expands, per grounding, into the ground atoms it sums over (a vectorised join plus ``bincount``
aggregation, never a Python loop per substitution), filtered by its filter clause, and ``|X|``
counts them. As in the reference, groundings without a target atom, and one-atom groundings that
no value can violate, are dropped. Every open atom a grounding reaches must be a target
or an observation. A constant of the rules that no fact mentions gets a code of its own, after
the data's: an atom with it is absent, so 0 for a closed predicate and an error for an open one,
as in the reference engine. Before grounding anything, each rule's number of groundings is
counted from the relations (:func:`estimate_grounding`); a program over ``max_ground_rules`` is
refused with the rule to restrict instead of running out of memory. The joins are planned by
:mod:`hlmrf.grounding.plan` and run by :mod:`hlmrf.grounding.relational`; this module turns the
substitution tables into potentials.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np
import scipy.sparse as sp

from hlmrf.data.arities import rule_atoms
from hlmrf.data.store import ConstantTable, FactStore
from hlmrf.data.keys import pack_keys
from hlmrf.errors import GroundingError, RuleError
from hlmrf.grounding.plan import Scan, UnionPlan, plan_rule
from hlmrf.infra.memory import release_free_memory
from hlmrf.grounding.relational import (
    count_rows,
    execute,
    join_indices,
    lookup_rows,
    match_pattern,
)
from hlmrf.language.ast import ArithmeticRule, BoolOp, Comparison, Constant, Program, Variable, coef_value
from hlmrf.model.hlmrf import HLMRF, GroundIndex
from hlmrf.model.printer import substituted_rule_text
from hlmrf.model.terms import Kind

if TYPE_CHECKING:  # pragma: no cover
    from hlmrf.grounding.duckdb_backend import DuckDBOptions
    from hlmrf.grounding.spark_backend import SparkOptions

#: Default of ``ground(..., max_ground_rules=)``: about 2-5 GB of grounding work at PSL's usual
#: two or three atoms per ground rule.
DEFAULT_MAX_GROUND_RULES = 50_000_000


@dataclass
class _AtomTable:
    """All known atoms of one predicate: targets first (variables), then observations."""

    args: np.ndarray  # (k, arity)
    var: np.ndarray  # (k,) variable index or -1
    value: np.ndarray  # (k,) observed value (nan for variables)
    open: bool
    name: str


def _atom_tables(store: FactStore) -> tuple[dict[str, _AtomTable], list[str], list[int], list[np.ndarray]]:
    tables: dict[str, _AtomTable] = {}
    preds, offsets, var_args = [], [], []
    nvar = 0
    for key, p in store.predicates.items():
        targets = p.target_args if p.open else p.target_args[:0]
        t = len(targets)
        tables[key] = _AtomTable(
            np.concatenate([targets, p.obs_args]),
            np.concatenate([np.arange(nvar, nvar + t), np.full(len(p.obs_args), -1)]).astype(np.int64),
            np.concatenate([np.full(t, np.nan), p.obs_values]),
            p.open, p.name)
        if p.open:
            preds.append(p.name)
            offsets.append(nvar)
            var_args.append(targets)
            nvar += t
    return tables, preds, offsets, var_args


def check_program(program: Program, store: FactStore) -> None:
    """Every predicate of the rules (filters included) exists in the data with the arity every use
    of it gives; filters use closed predicates only."""
    # Checked against the data, not use against use: the data says which of two uses is wrong.
    for rule in program.rules:
        for atom in rule_atoms(rule):
            p = store.get(atom.predicate)
            if p is None:
                known = ", ".join(sorted(q.name for q in store.predicates.values())) or "none"
                raise RuleError(
                    f"unknown predicate {atom.predicate}: no facts file or declaration mentions it "
                    f"(known: {known}); add {atom.predicate.lower()}_obs.txt or "
                    f"{atom.predicate.lower()}_targets.txt, or fix the spelling",
                    atom.span, program.text)
            if p.arity != len(atom.args):
                raise RuleError(f"{atom.predicate} takes {p.arity} arguments in the data, "
                                f"but {len(atom.args)} are given here", atom.span, program.text)
        for f in getattr(rule, "filters", ()):
            for atom in f.atoms():
                if store.get(atom.predicate).open:
                    raise _open_in_filter(atom, program)


def _open_in_filter(atom, program: Program) -> RuleError:
    return RuleError(f"Open predicate ({atom.predicate}) not allowed in filter. Only closed "
                     f"predicates may appear in filters: {atom.predicate} has targets; filter on "
                     "an observed (closed) predicate instead", atom.span, program.text)


class _Codes:
    """The store's constant codes, extended by the rules' constants that no fact mentions.

    Each such constant gets a code after the data's, so packed keys cannot alias it with a real
    atom (a sentinel -1 did: ``(x, -1)`` packs like ``(x - 1, base - 1)``) and messages can name
    it. The store is not changed.
    """

    def __init__(self, table: ConstantTable, program: Program):
        self.names = list(table.names)
        self._lookup = table.lookup
        self._extra: dict[str, int] = {}
        for value in sorted(_program_constants(program)):
            if table.lookup(value) is None:
                self._extra[value] = len(self.names)
                self.names.append(value)
        self.absent = set(self._extra)
        self._rank: np.ndarray | None = None
        self.base = max(len(self.names), 1)

    def lookup(self, name: str) -> int | None:
        code = self._lookup(name)
        return code if code is not None else self._extra.get(name)

    def rank(self) -> np.ndarray:
        """Each code's position in the sorted order of the names (PSL's ``%``)."""
        if self._rank is None:
            order = np.argsort(np.asarray(self.names, dtype=object), kind="stable")
            self._rank = np.empty(len(order), dtype=np.int64)
            self._rank[order] = np.arange(len(order))
        return self._rank

    def atom(self, predicate: str, row) -> str:
        """``Friends('y', 'zzz')``: a ground atom as the reference engine names it."""
        return f"{predicate}({', '.join(str(Constant(self.names[int(c)])) for c in row)})"


def _program_constants(program: Program) -> set[str]:
    """Every constant written anywhere in the rules (atoms, comparisons, filters)."""
    out: set[str] = set()

    def walk(x):
        if isinstance(x, Constant):
            out.add(x.value)
        elif isinstance(x, (tuple, list)):
            for item in x:
                walk(item)
        elif is_dataclass(x) and not isinstance(x, type):
            for f in fields(x):
                if f.name not in ("span", "text"):
                    walk(getattr(x, f.name))

    walk(program.rules)
    return out


@dataclass(frozen=True)
class RuleEstimate:
    """A rule's number of groundings, counted from the relations before grounding it.

    ``ground_rules`` is the number of substitutions the rule's join produces: one ground rule
    each (two for a weighted ``=``), of which trivially satisfied ones are dropped afterwards, so
    the model may have fewer. ``exact`` is False when it is an upper bound (a join too large to
    count pair by pair, or a disjunction of positive literals whose branches may overlap).
    """

    rule: int  # index into program.rules
    location: str  # "rules.psl:3", or "rule 4" for a rule without a source
    text: str
    ground_rules: int
    exact: bool
    database: int | None = None
    """The database's own estimate of the join's rows (its optimizer's cardinality), with
    ``backend="duckdb"``; None otherwise."""

    @property
    def expected(self) -> int:
        """What the size check uses: the count when it is exact, else the database's estimate
        when there is one (the upper bound can be far too loose), else the upper bound."""
        if self.exact or self.database is None:
            return self.ground_rules
        return self.database

    def __str__(self) -> str:
        count = f"{self.ground_rules:,}" if self.exact else f"at most {self.ground_rules:,}"
        db = "" if self.database is None else f" (DuckDB estimates ~{self.database:,})"
        return f"rule {self.rule + 1} ({self.location}): {count} ground rule(s){db}   {self.text}"


def _location(r: int, rule) -> str:
    span = getattr(rule, "span", None)
    return f"{span.source}:{span.line}" if span is not None else f"rule {r + 1}"


@dataclass(frozen=True)
class SubstitutionIndex(GroundIndex):
    """A :class:`GroundIndex` that also keeps, per rule, the substitutions its rows came from.

    ``substitutions[r]`` is ``(variables, codes)``: the rule's variable names and an
    ``(groundings, len(variables))`` table of constant codes (for a summation rule, the variables
    other than the summation variables); ``row_substitution[i]`` is the row of that table model row
    ``i`` came from. Built only when asked (``ground(..., keep_substitutions=True)``).
    """

    substitutions: tuple = ()
    row_substitution: np.ndarray = None  # type: ignore[assignment]


class _Prepared:
    """What every rule's grounding shares: atom tables, coded constants, relations, join plans."""

    def __init__(self, program: Program, store: FactStore):
        check_program(program, store)
        self.program = program
        self.tables, self.preds, self.offsets, self.var_args = _atom_tables(store)
        self.codes = _Codes(store.constants, program)
        self._relations: dict[tuple[str, str], np.ndarray] = {}
        sizes = {}
        for key, t in self.tables.items():
            sizes[(key, "known")] = len(t.args)
            sizes[(key, "support")] = int(((t.var >= 0) | (t.value > 0)).sum())
            sizes[(key, "targets")] = int((t.var >= 0).sum())
        self.plans = [plan_rule(r, rule, sizes, program.text) for r, rule in enumerate(program.rules)]

    def relation(self, scan: Scan) -> np.ndarray:
        key = (scan.predicate, scan.relation)
        if key not in self._relations:
            t = self.tables[scan.predicate]
            if scan.relation == "support":
                keep = (t.var >= 0) | (t.value > 0)
                self._relations[key] = t.args[keep]
            elif scan.relation == "targets":
                self._relations[key] = t.args[t.var >= 0]
            else:
                self._relations[key] = t.args
        return self._relations[key]

    def execute(self, plan, part: tuple[int, int] = (0, 1)) -> np.ndarray:
        """The plan's substitutions (``part``: :func:`~hlmrf.grounding.relational.execute`'s;
        a union is deduplicated across its parts, so it runs whole)."""
        c = self.codes
        if isinstance(plan, UnionPlan):
            parts = [execute(p, self.relation, c.base, c.lookup, c.rank) for p in plan.parts]
            return np.unique(np.concatenate(parts), axis=0) if parts else \
                np.zeros((0, len(plan.variables)), np.int64)
        return execute(plan, self.relation, c.base, c.lookup, c.rank, part)

    def estimate(self, r: int) -> RuleEstimate:
        plan, rule, c = self.plans[r], self.program.rules[r], self.codes
        parts = plan.parts if isinstance(plan, UnionPlan) else (plan,)
        counts = [count_rows(p, self.relation, c.base, c.lookup, c.rank) for p in parts]
        exact = len(counts) <= 1 and all(e for _, e in counts)
        return RuleEstimate(r, _location(r, rule), rule.text or str(rule),
                            int(sum(n for n, _ in counts)), exact)


def estimate_grounding(program: Program, store: FactStore) -> tuple[RuleEstimate, ...]:
    """Each rule's number of groundings on ``store``, counted without grounding.

    The count runs the rule's join plan on multiplicities instead of rows (see
    :func:`hlmrf.grounding.relational.count_rows`): exact for cartesian products and chains of
    equi-joins, an upper bound (``exact=False``) when an intermediate join is too large to count
    pair by pair. It costs about one pass over each relation the rule scans.

    Raises the :class:`RuleError` s of :func:`ground`.
    """
    prep = _Prepared(program, store)
    return tuple(prep.estimate(r) for r in range(len(program.rules)))


def _check_size(estimates, max_ground_rules: int | None) -> None:
    if max_ground_rules is None:
        return
    total = sum(e.expected for e in estimates)
    if total <= max_ground_rules:
        return
    worst = sorted(estimates, key=lambda e: -e.expected)
    top = worst[0]
    about = "" if all(e.exact for e in estimates) else \
        "about " if any(not e.exact and e.database is not None for e in estimates) else "up to "
    if top.expected > max_ground_rules:
        head = (f"rule {top.rule + 1} ({top.location}) `{top.text}` would create {about}"
                f"{top.expected:,} ground rules, more than max_ground_rules = {max_ground_rules:,}")
    else:
        head = (f"the rules would create {about}{total:,} ground rules, more than "
                f"max_ground_rules = {max_ground_rules:,}; the largest:\n" +
                "\n".join(f"  {e}" for e in worst[:3] if e.ground_rules))
    raise GroundingError(
        f"{head}.\nGrounding was not attempted. Restrict the rule's body (add an atom or a "
        "comparison that binds its variables more tightly, or range them over a smaller "
        "predicate), or raise the limit: --max-ground-rules N on the command line, "
        "max_ground_rules=N in hlmrf.infer and hlmrf.ground (None: no limit)")


def ground(program: Program, store: FactStore, keep_substitutions: bool = False, *,
           max_ground_rules: int | None = DEFAULT_MAX_GROUND_RULES,
           on_estimate: Callable[[RuleEstimate], None] | None = None,
           backend: str = "numpy", duckdb: "DuckDBOptions | None" = None,
           spark: "SparkOptions | None" = None, share: tuple[int, int] | None = None) -> HLMRF:
    """Ground ``program`` on ``store``.

    Returns the model; ``model.index`` maps its columns to target atoms and its ``rule`` codes to
    the program's rules. With ``keep_substitutions`` the index is a :class:`SubstitutionIndex`
    that also maps every row to the substitution it grounds (for ``--ground-rules``).

    Before grounding anything, every rule's groundings are counted (:func:`estimate_grounding`);
    ``on_estimate`` receives each :class:`RuleEstimate` (for a progress display), and a total
    over ``max_ground_rules`` (``None``: no limit) is an error instead of a grounding that will
    not fit in memory.

    ``backend`` runs the joins: ``"numpy"`` (in memory, the default) or ``"duckdb"``
    (:mod:`hlmrf.grounding.duckdb_backend`: out of core, with ``duckdb``'s
    :class:`~hlmrf.grounding.duckdb_backend.DuckDBOptions`) or ``"spark"``
    (:mod:`hlmrf.grounding.spark_backend`: Spark SQL, locally or on a cluster, with ``spark``'s
    :class:`~hlmrf.grounding.spark_backend.SparkOptions`); both give the same potentials as
    ``"numpy"``, each rule's rows in the sorted order of their substitutions.

    ``share=(k, N)`` grounds only worker ``k``'s share of ``N`` (for the distributed solver,
    :mod:`hlmrf.distributed`): a logical rule's parts ``k, k + N, ...`` (the numpy executor runs
    only those: each worker also does 1/N of the joins), a union's or an arithmetic rule's ``k``-th
    contiguous share of rows. The shares of ``k = 0..N-1`` are together exactly the whole model's
    rows (in another order); the result has ``model.share == (k, N)`` and all ``n`` variables.

    Raises
    ------
    RuleError : unknown predicate, arity mismatch, a head variable no body atom binds, an open
        predicate in a filter clause.
    GroundingError : more than ``max_ground_rules`` ground rules, or memory ran out while
        grounding a rule (both name the rule); an open atom reached by grounding that is neither
        a target nor observed; a fully observed hard constraint that the data violates.
    """
    if backend not in BACKENDS:
        from hlmrf.errors import SettingsError

        raise SettingsError(f"unknown grounding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    share = _check_share(share, keep_substitutions)
    prep = _Prepared(program, store)
    codes = prep.codes
    estimates = [prep.estimate(r) for r in range(len(program.rules))]
    executor = None
    if backend == "duckdb":
        from hlmrf.grounding.duckdb_backend import DuckDBExecutor, DuckDBOptions

        executor = DuckDBExecutor(duckdb or DuckDBOptions(), prep.relation, codes.lookup, codes.rank)
    elif backend == "spark":
        from hlmrf.grounding.spark_backend import ParquetReader, SparkExecutor, SparkOptions

        spark = spark or SparkOptions()
        if share is not None and share[1] > 1 and not spark.reuse:
            from hlmrf.errors import SettingsError

            raise SettingsError("the workers of a split grounding cannot each run Spark into one folder: "
                                "ground once (hlmrf.grounding.spark_backend.write_grounding), then let "
                                "every worker read its share with SparkOptions(reuse=True); hlmrf.infer "
                                "and hlmrf-infer --split-grounding do this")
        executor = (ParquetReader if spark.reuse else SparkExecutor)(spark, prep.relation, codes.lookup, codes.rank)
    try:
        if executor is not None:
            estimates = [replace(e, database=executor.estimate(prep.plans[e.rule])) for e in estimates]
        if on_estimate is not None:
            for e in estimates:
                on_estimate(e)
        _check_size(estimates, max_ground_rules)
        ctx = _Context(prep.tables, codes.base, codes, program, _nvars(prep.tables))
        blocks, subs_kept = _ground_rules(prep, program, estimates, ctx, keep_substitutions, executor,
                                           share)
        if executor is not None and hasattr(executor, "finish") and share is None:
            executor.finish()  # every rule is there: a later run may reuse them
    finally:
        if executor is not None:
            executor.close()

    n = sum(len(a) for a in prep.var_args)
    texts = tuple(rule.text or str(rule) for rule in program.rules)
    names = codes.names if codes.absent else store.constants.names
    preds, offsets, var_args = tuple(prep.preds), tuple(prep.offsets), tuple(prep.var_args)
    if keep_substitutions:
        row_sub = np.concatenate([b.sel for b in blocks]) if blocks else np.zeros(0, np.int64)
        index = SubstitutionIndex(preds, offsets, var_args, texts, names, tuple(subs_kept), row_sub)
    else:
        index = GroundIndex(preds, offsets, var_args, texts, names)
    try:
        model = _assemble(blocks, n, index)
        return model if share is None else replace(model, share=share)
    except MemoryError:
        raise GroundingError(
            f"ran out of memory assembling the model of {sum(e.ground_rules for e in estimates):,} "
            "ground rules; restrict the largest rules' bodies or lower --max-ground-rules") from None


BACKENDS = ("numpy", "duckdb", "spark")


def _check_share(share, keep_substitutions: bool):
    if share is None:
        return None
    from hlmrf.errors import SettingsError

    try:
        k, N = (int(x) for x in share)
    except (TypeError, ValueError):
        raise SettingsError(f"share must be a pair (worker, workers), not {share!r}") from None
    if not (N >= 1 and 0 <= k < N):
        raise SettingsError(f"share ({k}, {N}): the worker must be in 0..{N - 1} of {N} >= 1 workers")
    if keep_substitutions:
        raise SettingsError("keep_substitutions (--ground-rules) needs the whole model: ground "
                            "without share (every worker whole)")
    return (k, N)


def _share_rows(n_rows: int, share) -> slice:
    """Worker ``k``'s contiguous share of ``n_rows`` rows."""
    k, N = share
    return slice(n_rows * k // N, n_rows * (k + 1) // N)


def _share_block(b: "_Block", share) -> "_Block":
    s = _share_rows(b.A.shape[0], share)
    return b._replace(A=b.A[s], c=b.c[s], sel=None if b.sel is None else b.sel[s])


def _ground_rules(prep: _Prepared, program: Program, estimates, ctx: _Context, keep_substitutions: bool,
                  executor, share=None):
    """Every rule's blocks (and substitution tables when kept), rule by rule."""
    blocks, subs_kept = [], []
    db_error = executor.errors if executor is not None else ()
    for r, rule in enumerate(program.rules):
        plan = prep.plans[r]
        try:
            if isinstance(rule, ArithmeticRule):
                subs = prep.execute(plan) if executor is None else executor.execute(plan, prep.execute)
                rule_blocks, variables, table = _rows_of_arithmetic(r, rule, plan, subs, ctx)
                if share is not None:  # rows, not substitutions: a summation groups several
                    rule_blocks = [_share_block(b, share) for b in rule_blocks]
            else:
                subs = None
                rule_blocks, table = _ground_logical(prep, r, rule, plan, estimates[r], ctx,
                                                     keep_substitutions, executor, share)
                variables = plan.variables
            del subs
        except _BrokenHard as broken:
            raise _broken_hard_error(r, rule, broken) from None
        except db_error as exc:
            e = estimates[r]
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise GroundingError(f"{executor.name} failed grounding rule {r + 1} ({e.location}) "
                                 f"`{e.text}`: {first}; {executor.hint(first)}") from None
        except MemoryError:
            e = estimates[r]
            raise GroundingError(
                f"ran out of memory grounding rule {r + 1} ({e.location}) `{e.text}` "
                f"({'' if e.exact else 'up to '}{e.ground_rules:,} ground rules); restrict the "
                "rule's body (add an atom or a comparison that binds its variables more "
                "tightly), or lower --max-ground-rules (max_ground_rules=) so that such a rule "
                "is refused before grounding") from None
        blocks.extend(rule_blocks if keep_substitutions else [b._replace(sel=None) for b in rule_blocks])
        if keep_substitutions:  # otherwise the tables go now (they can be larger than the model)
            subs_kept.append((tuple(variables), table))
    return blocks, subs_kept


@dataclass
class _Context:
    tables: dict
    base: int
    consts: object
    program: Program
    n: int


def _literal_atoms(pattern, plan, subs: np.ndarray, consts) -> np.ndarray:
    cols = []
    for item in pattern:
        if isinstance(item, Constant):
            cols.append(np.full(len(subs), consts.lookup(item.value), dtype=np.int64))
        else:
            cols.append(subs[:, plan.variables.index(item)])
    return np.stack(cols, axis=1) if cols else np.zeros((len(subs), 0), dtype=np.int64)


def _resolve_args(atom, args, ctx: _Context, rule, may_be_missing: bool = False):
    """Variable index (or -1) and observed value (0 when absent) of ground atoms ``args``."""
    t = ctx.tables[atom.key]
    idx = lookup_rows(t.args, args, ctx.base)
    missing = idx < 0
    if missing.any() and t.open and not may_be_missing:
        bad = np.unique(args[missing], axis=0)[:5]
        names = ", ".join(ctx.consts.atom(atom.predicate, row) for row in bad)
        absent = sorted({ctx.consts.names[c] for c in np.unique(args[missing])} & ctx.consts.absent)
        if absent:
            names += (f" (the rule's constant {', '.join(str(Constant(a)) for a in absent)} "
                      "appears in no fact: check its spelling)")
        span = f"{atom.span}: " if atom.span else ""
        raise GroundingError(
            f"{span}rule `{rule.text or rule}` reaches {int(missing.sum())} atom(s) of the open "
            f"predicate {atom.predicate} that are neither targets nor observations, e.g. {names}. "
            f"Found one or more RandomVariableAtoms that were not explicitly specified in the "
            f"targets: add them to {atom.predicate.lower()}_targets.txt (or observe them in "
            f"{atom.predicate.lower()}_obs.txt), or restrict the rule's body so it does not reach them")
    if len(t.args) == 0:  # a predicate without atoms: every atom is absent
        return np.full(len(args), -1, np.int64), np.zeros(len(args)), missing
    var = np.where(missing, -1, t.var[np.maximum(idx, 0)])
    val = np.where(missing | (var >= 0), 0.0, t.value[np.maximum(idx, 0)])
    return var, val, missing


GROUND_PART_ROWS = 1 << 18
"""A logical rule with more groundings than this is ground in parts of about this many (see
:func:`hlmrf.grounding.relational.execute`'s ``part``): the substitutions and the temporaries that
turn them into rows (some 250 bytes per grounding) are then held for one part at a time, not for
the whole rule, and only the finished rows add up."""


def _numpy_parts(prep: _Prepared, plan, estimate: "RuleEstimate", share=None):
    # At most 1,024 parts: each part re-reads the first scan's relation, and an estimate can be
    # a loose upper bound.
    union = isinstance(plan, UnionPlan)
    parts = 1 if union else min(1024, max(1, -(-estimate.ground_rules // GROUND_PART_ROWS)))
    if share is None:
        for k in range(parts):
            yield prep.execute(plan, (k, parts))
        return
    worker, workers = share
    if union:  # deduplicated across its parts: it runs whole, and the worker keeps its rows
        subs = prep.execute(plan)
        yield subs[_share_rows(len(subs), share)]
        return
    parts = max(parts, workers)  # every worker has parts; only its own are executed
    for k in range(worker, parts, workers):
        yield prep.execute(plan, (k, parts))


def _executor_parts(executor, prep: _Prepared, plan, estimate: "RuleEstimate", share=None):
    """An executor's parts of the plan; with ``share``, worker k's parts k, k + N, ... (parts
    small enough that a rule of ``estimate`` rows has about N or more of them)."""
    if share is None:
        yield from executor.parts(plan, GROUND_PART_ROWS, prep.execute)
        return
    worker, workers = share
    rows = max(1, min(GROUND_PART_ROWS, -(-estimate.ground_rules // workers)))
    parts = executor.parts(plan, rows, prep.execute)
    try:
        for j, subs in enumerate(parts):
            if j % workers == worker:
                yield subs
    finally:
        parts.close()


def _ground_logical(prep: _Prepared, r: int, rule, plan, estimate: "RuleEstimate", ctx: _Context,
                    keep_substitutions: bool, executor=None, share=None):
    """A logical rule's blocks, ground part by part; and its substitution table if kept (else None)."""
    parts = _numpy_parts(prep, plan, estimate, share) if executor is None else \
        _executor_parts(executor, prep, plan, estimate, share)
    blocks, tables, offset, broken = [], [], 0, None
    try:
        for subs in parts:
            if len(subs) == 0:
                continue
            try:
                part_blocks = _rows_of_logical(r, rule, plan, subs, ctx)
            except _BrokenHard as b:  # counted over every part, then reported once
                broken = b if broken is None else broken + b
                continue
            for b in part_blocks:
                blocks.append(b._replace(sel=b.sel + offset) if offset else b)
            offset += len(subs)
            if keep_substitutions:
                tables.append(subs)
            del subs
    finally:
        parts.close()  # a part that raised: the executor's cleanup runs now, not at collection
    if broken is not None:
        raise broken
    empty = np.zeros((0, len(plan.variables)), np.int64)
    if not blocks:  # no groundings at all: an empty block keeps the rule's shape
        blocks = _rows_of_logical(r, rule, plan, empty, ctx)
    if not keep_substitutions:
        return blocks, None
    return blocks, (tables[0] if len(tables) == 1 else np.concatenate(tables) if tables else empty)


def _rows_of_logical(r, rule, plan, subs, ctx: _Context):
    g = len(subs)
    clause = rule.clause()
    patterns = {} if isinstance(plan, UnionPlan) else {
        s.literal: s.pattern for s in plan.steps if isinstance(s, Scan)}
    patterns.update({l.literal: l.pattern for l in plan.lookups})
    n_neg = sum(l.negated for l in clause)
    c = np.full(g, float(n_neg - 1))
    vars_, coefs, seen = [], [], []
    sat = np.zeros(g, dtype=bool)
    for i, lit in enumerate(clause):
        args = _literal_atoms(patterns[i], plan, subs, ctx.consts)
        var, val, missing = _resolve_args(lit.atom, args, ctx, rule)
        if rule.hard:  # only a hard rule's message needs them; they are large (one row per grounding)
            seen.append((lit.atom, args, var, val, missing))
        s = 1.0 if lit.negated else -1.0
        observed = var < 0
        sat |= observed & (val == (0.0 if lit.negated else 1.0))
        c -= s * val
        vars_.append(var)
        coefs.append(np.full(g, s))
    if rule.hard:
        kinds = [(Kind.LEQ, 1.0, 0.0)]
    else:
        kind = Kind.LINEAR if len(clause) == 1 else Kind.HINGE
        kinds = [(kind, 1.0, rule.weight)]
    var = np.stack(vars_, axis=1) if vars_ else np.zeros((g, 0), np.int64)
    coef = np.stack(coefs, axis=1) if coefs else np.zeros((g, 0))
    rows = np.repeat(np.arange(g), var.shape[1])

    def describe(i: int) -> str:
        binding = {v: ctx.consts.names[int(code)] for v, code in zip(plan.variables, subs[i])}
        atoms = [(a, args[i], var[i], val[i], missing[i]) for a, args, var, val, missing in seen]
        return _describe_grounding(rule, binding, atoms, ctx)

    out = []
    for kind, flip, weight in kinds:
        out.append(_block(r, rule, g, rows, var.ravel(), flip * coef.ravel(), flip * c, kind, weight,
                          ctx, ~sat, None, describe, subs))
    return out


def _describe_grounding(rule, binding, atoms, ctx: _Context) -> str:
    """``K('a', 'b') = K('b', 'a') .   with K('a', 'b') = 1.0, K('b', 'a') = 0.0``."""
    parts, shown = [], set()
    for atom, row, var, val, missing in atoms:
        name = ctx.consts.atom(atom.predicate, row)
        if name in shown:
            continue
        shown.add(name)
        parts.append(f"{name} = " + ("(target)" if var >= 0 else
                                     f"{float(val)!r} (unlisted: closed world)" if missing else
                                     f"{float(val)!r}"))
    more = f", ... ({len(parts) - 8} more)" if len(parts) > 8 else ""
    return f"{substituted_rule_text(rule, binding, upper=False)}   with {', '.join(parts[:8])}{more}"


def _rows_of_arithmetic(r, rule: ArithmeticRule, plan, subs, ctx: _Context):
    """Potential rows of an arithmetic rule; summations are group-by aggregations per grounding.

    Each summation atom is expanded into ``(grounding, atom)`` entries with one vectorised join
    (open predicate: the atoms present in the data; closed predicate: every constant the
    predicate has at the summed position, absent atoms being 0, as the reference engine does);
    filters drop entries, ``|X|`` is the number of entries left per grounding (a ``bincount``).
    """
    sums = set(rule.sum_variables)
    if sums:
        cols = [plan.variables.index(v) for v in plan.project]
        G = subs[:, cols]
        if len(G):
            G = np.unique(G, axis=0) if G.shape[1] else G[:1]
        variables = plan.project
    else:
        G, variables = subs, plan.variables
    g = len(G)
    entries = []  # (term index, rows into G, var, val)
    seen = []  # what describe() needs: (atom, rows into G, args, var, val, missing)
    cards: dict[str, np.ndarray] = {}
    for i, (coef, atom) in enumerate(rule.lhs.terms):
        if atom.sum_variables:
            rows, args = _expand_summation(atom, G, variables, ctx)
            for f in rule.filters:
                if f.variable in atom.sum_variables and len(rows):
                    keep = _eval_filter(f, f.formula, atom, rows, args, G, variables, ctx, rule)
                    rows, args = rows[keep], args[keep]
            var, val, missing = _resolve_args(atom, args, ctx, rule, may_be_missing=True)
            for v in atom.sum_variables:
                cards[v] = np.bincount(rows, minlength=g).astype(np.float64)
        else:
            args = _literal_atoms(_pattern_of(atom), _Cols(variables), G, ctx.consts)
            rows = np.arange(g)
            var, val, missing = _resolve_args(atom, args, ctx, rule)
        entries.append((i, rows, var, val))
        if rule.hard:  # only a hard rule's message needs them
            seen.append((atom, rows, args, var, val, missing))

    sign = -1.0 if rule.op == ">=" else 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        const = np.broadcast_to(np.asarray(coef_value(rule.lhs.constant, cards), float), (g,))
        bad = ~np.isfinite(const)
        c = -sign * np.where(bad, 0.0, const)
        all_rows, all_var, all_coef = [], [], []
        n_atoms = np.zeros(g, np.int64)
        for i, rows, var, val in entries:
            k_all = np.broadcast_to(np.asarray(coef_value(rule.lhs.terms[i][0], cards), float), (g,))
            bad |= ~np.isfinite(k_all)  # undefined even where its sum is empty: skip
            k = np.where(np.isfinite(k_all), k_all, 0.0)[rows]
            c -= np.bincount(rows, weights=sign * k * val, minlength=g)
            n_atoms += np.bincount(rows, minlength=g)
            all_rows.append(rows), all_var.append(var), all_coef.append(sign * k)
    rows = np.concatenate(all_rows) if all_rows else np.zeros(0, np.int64)
    var = np.concatenate(all_var) if all_var else np.zeros(0, np.int64)
    coef = np.concatenate(all_coef) if all_coef else np.zeros(0)
    # Groundings whose sums are all empty have nothing to constrain (the reference skips them);
    # a coefficient undefined because some |X| is 0 skips the grounding too.
    zero_card = np.zeros(g, dtype=bool)
    for counts in cards.values():
        zero_card |= counts == 0
    overflow = bad & ~zero_card & (n_atoms > 0)
    if overflow.any():
        # Not an |X| of 0 (an undefined coefficient, skipped as the reference does): a finite
        # expression that overflowed. Dropping those groundings would change the model silently.
        i = int(np.flatnonzero(overflow)[0])
        binding = ", ".join(f"{v} = {ctx.consts.names[int(code)]}" for v, code in zip(variables, G[i]))
        sizes = ", ".join(f"|{v}| = {int(n[i])}" for v, n in cards.items())
        raise GroundingError(
            f"rule {r + 1} ({_location(r, rule)}) `{rule.text or rule}`: a coefficient is not a finite "
            f"number at {int(overflow.sum()):,} grounding(s), e.g. {binding or 'the only one'}"
            f"{' with ' + sizes if sizes else ''}; the rule's numbers overflow a float. Scale the "
            "rule down (divide its coefficients and constant by a common factor)")
    keep = (n_atoms > 0) & ~bad
    single = n_atoms == 1
    if rule.hard:
        kinds = [(Kind.EQ if rule.op == "=" else Kind.LEQ, 1.0, 0.0)]
    elif rule.op == "=":
        kinds = [(Kind.HINGE, 1.0, rule.weight), (Kind.HINGE, -1.0, rule.weight)]
    else:
        kinds = [(Kind.HINGE, 1.0, rule.weight)]

    def describe(i: int) -> str:
        binding = {v: ctx.consts.names[int(code)] for v, code in zip(variables, G[i])}
        atoms = [(a, args[j], var[j], val[j], missing[j]) for a, rows, args, var, val, missing in seen
                 for j in np.flatnonzero(rows == i)]
        return _describe_grounding(rule, binding, atoms, ctx)

    out = [_block(r, rule, g, rows, var, flip * coef, flip * c, kind, weight, ctx, keep, single,
                  describe, G) for kind, flip, weight in kinds]
    return out, variables, G


class _Cols:
    """Just enough of a plan for :func:`_literal_atoms`: the column order of a table."""

    def __init__(self, variables):
        self.variables = tuple(variables)


def _pattern_of(atom):
    return tuple(a.name if isinstance(a, Variable) else a for a in atom.args)


def _expand_summation(atom, G, variables, ctx: _Context):
    """``(rows into G, (entries, arity) ground atom codes)`` of a summation atom."""
    t = ctx.tables[atom.key]
    pattern = _pattern_of(atom)
    sums = atom.sum_variables
    matched, mvars = match_pattern(t.args, pattern, ctx.consts.lookup)
    g = len(G)
    if t.open:
        # The atoms present in the data (targets and observations), joined on the other variables.
        shared = [v for v in mvars if v not in sums]
        lk, rk = pack_keys(G[:, [variables.index(v) for v in shared]],
                           matched[:, [mvars.index(v) for v in shared]], ctx.base)
        rows, ri = join_indices(lk, rk)
        values = {v: matched[ri, mvars.index(v)] for v in sums}
    else:
        # Closed: every constant the predicate has at each summed position (absent atoms are 0).
        cands = [np.unique(matched[:, mvars.index(v)]) for v in sums]
        sizes = [len(cnd) for cnd in cands]
        total = int(np.prod(sizes)) if sizes else 1
        rows = np.repeat(np.arange(g), total)
        values = {}
        rep = total
        for v, cnd in zip(sums, cands):
            rep //= max(len(cnd), 1)
            values[v] = np.tile(np.repeat(cnd, rep), g * total // max(len(cnd) * rep, 1)) \
                if len(cnd) else np.zeros(0, np.int64)
    cols = []
    for item in pattern:
        if isinstance(item, Constant):
            cols.append(np.full(len(rows), ctx.consts.lookup(item.value), np.int64))
        elif item in values:
            cols.append(values[item])
        else:
            cols.append(G[rows, variables.index(item)])
    args = np.stack(cols, axis=1) if cols else np.zeros((len(rows), 0), np.int64)
    return rows, args


def _eval_filter(f, e, atom, rows, args, G, variables, ctx: _Context, rule) -> np.ndarray:
    """Crisp truth of a filter formula per entry: an atom is true when its value is > 0."""
    sum_col = {v: args[:, k] for k, v in enumerate(_pattern_of(atom)) if isinstance(v, str)}

    def column(term):
        if isinstance(term, Constant):
            return np.full(len(rows), ctx.consts.lookup(term.value), np.int64)
        if term.name == f.variable:
            return sum_col[term.name]
        return G[rows, variables.index(term.name)]

    if isinstance(e, BoolOp):
        parts = [_eval_filter(f, i, atom, rows, args, G, variables, ctx, rule) for i in e.items]
        return np.logical_and.reduce(parts) if e.op == "&" else np.logical_or.reduce(parts)
    if isinstance(e, Comparison):
        left, right = column(e.left), column(e.right)
        if e.op == "!=":
            return left != right
        if e.op == "==":
            return left == right
        rank = ctx.consts.rank()
        return rank[left] < rank[right]
    t = ctx.tables[e.atom.key]
    if t.open:  # check_program refuses these first
        raise _open_in_filter(e.atom, ctx.program)
    fargs = np.stack([column(a) for a in e.atom.args], axis=1) if e.atom.args else \
        np.zeros((len(rows), 0), np.int64)
    idx = lookup_rows(t.args, fargs, ctx.base)
    truth = (idx >= 0) & (t.value[np.maximum(idx, 0)] > 0) if len(t.value) else np.zeros(len(idx), bool)
    return ~truth if e.negated else truth


class _BrokenHard(Exception):
    """Groundings of a hard rule that observed atoms alone violate: how many, and the first three
    by substitution as ``(codes, text)`` (one block's, or a whole rule's when its parts are added
    up; :func:`_broken_hard_error` makes the message)."""

    def __init__(self, count: int, examples: list):
        super().__init__(count)
        self.count, self.examples = count, examples

    def __add__(self, other: "_BrokenHard") -> "_BrokenHard":
        return _BrokenHard(self.count + other.count, sorted(self.examples + other.examples)[:3])


def _broken_hard_error(r: int, rule, broken: _BrokenHard) -> GroundingError:
    shown = "\n".join(f"  {text}" for _, text in broken.examples)
    more = f"\n  ... and {broken.count - 3} more" if broken.count > 3 else ""
    return GroundingError(
        f"hard rule `{rule.text or rule}` ({_location(r, rule)}) is violated by observed "
        f"atoms alone in {broken.count} grounding(s):\n{shown}{more}\nFix the observations, "
        "or make the rule soft by giving it a weight")


def _block(r, rule, g, rows, var, coef, c, kind, weight, ctx: _Context, keep_g, single, describe, keys):
    """One kind of potential for ``g`` groundings given as COO entries ``(rows, var, coef)``.

    ``keep_g`` marks the groundings to keep (not trivially satisfied); ``single`` marks those with
    exactly one atom, dropped when no value in [0, 1] can violate them (as the reference does);
    ``describe(i)`` is grounding ``i`` with its atoms' values, for messages; ``keys`` the
    ``(g, k)`` substitution codes that order them. Raises :class:`_BrokenHard`.
    """
    present = var >= 0
    A = sp.csr_matrix((coef[present], (rows[present], var[present])), shape=(g, ctx.n))
    A.sum_duplicates()
    A.eliminate_zeros()
    nnz = np.diff(A.indptr)
    if kind in (Kind.LEQ, Kind.EQ):
        # A fully observed hard constraint the data violates cannot be fixed by inference.
        lo = -np.asarray((-A).maximum(0).sum(axis=1)).ravel() - c
        hi = np.asarray(A.maximum(0).sum(axis=1)).ravel() - c
        broken = (nnz == 0) & keep_g & ((lo > 1e-6) | ((kind == Kind.EQ) & (hi < -1e-6)))
        if broken.any():
            which = np.flatnonzero(broken)
            if keys.shape[1]:  # the first by substitution, whatever order the rows came in
                which = which[np.lexsort(keys[which].T[::-1])]
            raise _BrokenHard(int(broken.sum()), [(tuple(keys[i].tolist()), describe(int(i))) for i in which[:3]])
    keep = (nnz > 0) & keep_g
    if single is not None and kind in (Kind.HINGE, Kind.LEQ):
        # One atom, a*y - c <= 0 for every y in [0, 1]: never violated.
        top = np.asarray(A.maximum(0).sum(axis=1)).ravel() - c
        keep &= ~(single & (top <= 0))
    sel = np.flatnonzero(keep)
    A = A[sel]
    p = 2 if (rule.squared and kind <= Kind.HINGE) else 1
    return _Block(A, c[sel], float(weight), p, int(kind), r, sel.astype(np.int64))


class _Block(NamedTuple):
    """Rows of one kind from one rule (or one part of a rule): what :func:`_assemble` stacks.

    Per-row arrays only where rows differ; the weight, exponent, kind and rule are the block's.
    ``sel`` maps each row to the grounding (the substitution's row) it came from."""

    A: sp.csr_matrix
    c: np.ndarray
    weight: float
    p: int
    kind: int
    rule: int
    sel: np.ndarray


def _nvars(tables) -> int:
    return sum(int((t.var >= 0).sum()) for t in tables.values())


_TRIM_EVERY = 16 << 20
"""Bytes of blocks freed between two :func:`~hlmrf.infra.memory.release_free_memory` calls in
:func:`_assemble` (each block is a few MB, served from glibc's heap, so its freed pages stay
resident beside the model's new arrays until the next trim).

Measured on acquaintances (``ground()`` alone, one process per run, alternating, 2026-11-30):
every 256 MiB (before), N=300's grounding peaked at 286-289 MiB in 0.82-0.93 s (median 0.85);
every 16 MiB at 216-228 MiB in 0.80-1.00 s (median 0.83); N=600 at 1,169-1,175 against 851-857
MiB (the model is 844), in 6.84-7.20 against 6.79-7.12 s. Trimming after every block (17 at
N=300, 71 MiB) gave the same peaks in an earlier trial, whose medians differed by 0.08 s
(0.93 against 0.85 s): a difference these runs do not show, so probably the machine's noise."""


ARITY_WINDOW = 1 << 16
"""Rows per window that :func:`_order_by_arity` orders (windows start at each rule's first row)."""


def _order_by_arity(indptr, indices, data, rule, per_row) -> None:
    """Order each rule's rows by their number of copies, in place, window by window.

    Which atoms of a grounding are observed varies from grounding to grounding, so arities come
    in no order, and the compiled ADMM kernel, which writes out terms of 1, 2 and 3 copies,
    mispredicts its choice on most rows (acquaintances N=300: its pass 8-9% faster ordered).
    Stable within a window, and a function of the assembled rows only (not of the parts they were
    ground in), so every backend still gives the same model row for row. Windows of
    :data:`ARITY_WINDOW` rows bound the temporaries. ``rule`` (each row's rule) and the
    ``per_row`` arrays (None skipped) move with the rows.
    """
    m = len(indptr) - 1
    if m < 2:
        return
    firsts = np.flatnonzero(rule[1:] != rule[:-1]) + 1
    for a, b in zip(np.r_[0, firsts], np.r_[firsts, m]):
        for lo in range(int(a), int(b), ARITY_WINDOW):
            hi = min(lo + ARITY_WINDOW, int(b))
            cnt = np.diff(indptr[lo:hi + 1])
            if len(cnt) < 2 or (cnt[1:] >= cnt[:-1]).all():
                continue
            perm = np.argsort(np.minimum(cnt, 255).astype(np.uint8), kind="stable")
            ws, we = int(indptr[lo]), int(indptr[hi])
            lens = cnt[perm]
            ptr = np.zeros(len(lens) + 1, np.int64)
            np.cumsum(lens, out=ptr[1:])
            gather = np.repeat((indptr[lo:hi][perm] - ws) - ptr[:-1], lens) + np.arange(we - ws)
            indices[ws:we] = indices[ws:we][gather]
            data[ws:we] = data[ws:we][gather]
            indptr[lo + 1:hi + 1] = ws + ptr[1:]
            for arr in (rule, *per_row):
                if arr is not None:
                    arr[lo:hi] = arr[lo:hi][perm]


def _assemble(blocks: list, n: int, index: GroundIndex) -> HLMRF:
    """Stack the blocks into one model, emptying ``blocks`` as it goes.

    The model's arrays are allocated once and filled block by block, each block released once
    copied, so assembling holds about one model's worth of rows at a time, not two (a
    ``vstack`` and ``concatenate`` would hold every block and the result together).
    """
    m = sum(b.A.shape[0] for b in blocks)
    nnz = sum(b.A.nnz for b in blocks)
    itype = np.int32 if max(nnz, n) < 2**31 - 1 else np.int64
    indptr = np.empty(m + 1, itype)
    indices = np.empty(nnz, itype)
    data = np.empty(nnz, np.float64)
    c, w = np.empty(m), np.empty(m)
    p, kind, rule = np.empty(m, np.int8), np.empty(m, np.int8), np.empty(m, np.int32)
    indptr[0] = 0
    row = at = freed = 0
    for i in range(len(blocks)):
        b = blocks[i]
        blocks[i] = None  # the caller's list: the block is freed once copied
        freed += b.A.nnz * 12 + b.A.shape[0] * 12
        if freed > _TRIM_EVERY:  # blocks are heap-sized: hand their pages back as we go
            release_free_memory()
            freed = 0
        A = b.A
        A.sort_indices()
        k, e = A.shape[0], A.nnz
        indptr[row + 1:row + k + 1] = A.indptr[1:] + at
        indices[at:at + e] = A.indices
        data[at:at + e] = A.data
        c[row:row + k] = b.c
        w[row:row + k] = b.weight
        p[row:row + k] = b.p
        kind[row:row + k] = b.kind
        rule[row:row + k] = b.rule
        row, at = row + k, at + e
        del A, b
    blocks.clear()
    _order_by_arity(indptr, indices, data, rule, (c, w, p, kind, getattr(index, "row_substitution", None)))
    A = sp.csr_matrix((data, indices, indptr), shape=(m, n), copy=False)
    A.has_sorted_indices = True
    return HLMRF(A, c, w, p, kind, rule, index=index)
