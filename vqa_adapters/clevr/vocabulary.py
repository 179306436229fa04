"""The closed vocabulary of CLEVR 1.0: attribute values, program functions and question families.

Every other module of the CLEVR front end takes its names from here, so a value is spelled one way
everywhere (the dataset's canonical spelling: ``large``/``small``, ``metal``/``rubber``,
``cube``/``sphere``/``cylinder``). This module holds data only; it does not read files, parse text or
execute programs, and it does not hold the natural-language synonyms (those belong to the parser).
"""
from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_VALUES",
    "RELATIONS",
    "FUNCTIONS",
    "FUNCTION_ARITY",
    "FAMILY_GROUPS",
    "TEMPLATE_OFFSETS",
    "family_group",
    "global_family_index",
]

#: The four object attributes, in the order CLEVR's templates state them (<Z> <C> <M> <S>).
ATTRIBUTES: tuple[str, ...] = ("size", "color", "material", "shape")

#: Canonical values of each attribute.
ATTRIBUTE_VALUES = MappingProxyType(
    {
        "size": frozenset({"small", "large"}),
        "color": frozenset({"gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"}),
        "material": frozenset({"rubber", "metal"}),
        "shape": frozenset({"cube", "sphere", "cylinder"}),
    }
)

#: The spatial relations stored in a scene's ``relationships``.
RELATIONS: tuple[str, ...] = ("left", "right", "front", "behind")

#: Number of inputs of each of the 26 CLEVR 1.0 program functions.
FUNCTION_ARITY = MappingProxyType(
    {
        "scene": 0,
        **{f"filter_{a}": 1 for a in ATTRIBUTES},
        "unique": 1,
        "relate": 1,
        "union": 2,
        "intersect": 2,
        "count": 1,
        "exist": 1,
        **{f"query_{a}": 1 for a in ATTRIBUTES},
        **{f"same_{a}": 1 for a in ATTRIBUTES},
        **{f"equal_{a}": 2 for a in ATTRIBUTES},
        "equal_integer": 2,
        "less_than": 2,
        "greater_than": 2,
    }
)
FUNCTIONS: frozenset[str] = frozenset(FUNCTION_ARITY)

#: The nine template files and the global question-family indices (0..89) each one holds, in the
#: order the released CLEVR 1.0 questions number them.
FAMILY_GROUPS: tuple[tuple[str, range], ...] = (
    ("compare_integer", range(0, 9)),
    ("comparison", range(9, 25)),
    ("three_hop", range(25, 31)),
    ("single_and", range(31, 36)),
    ("same_relate", range(36, 64)),
    ("single_or", range(64, 72)),
    ("one_hop", range(72, 78)),
    ("two_hop", range(78, 84)),
    ("zero_hop", range(84, 90)),
)

#: First global family index of each template file (the generator numbers families per file).
TEMPLATE_OFFSETS = MappingProxyType({name: r.start for name, r in FAMILY_GROUPS})


def family_group(family_index: int | None) -> str | None:
    """Return the template-file group name (e.g. ``"same_relate"``) of a global family index.

    Returns ``None`` for ``None`` or an index outside 0..89.
    """
    if family_index is None:
        return None
    for name, r in FAMILY_GROUPS:
        if family_index in r:
            return name
    return None


def global_family_index(template_filename: str | None, local_index: int | None) -> int | None:
    """Map a generator's (template file, per-file index) to CLEVR's global family index.

    ``template_filename`` may carry the ``.json`` suffix. Returns ``None`` for a template file that
    is not one of the nine CLEVR 1.0 files (e.g. a custom ``simple_query.json``) or an index out of
    that file's range.
    """
    if template_filename is None or local_index is None:
        return None
    stem = template_filename.rsplit("/", 1)[-1]
    stem = stem[:-5] if stem.endswith(".json") else stem
    for name, r in FAMILY_GROUPS:
        if name == stem:
            return r.start + local_index if 0 <= local_index < len(r) else None
    return None
