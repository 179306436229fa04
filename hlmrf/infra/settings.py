"""Build a frozen settings dataclass from a mapping (``-D KEY=VALUE`` pairs, a config's options).

Unknown keys are an error listing them and the valid ones. A value given as a string is parsed by
the field's type, strictly: ``bool`` from true/false/yes/no/on/off/1/0 only, ``int`` without
fractions, ``float`` finite (``inf`` only where the field's metadata says ``{"allow_inf": True}``),
``str`` from the field's ``{"choices": (...)}`` when it has them. Values of other types must
already have the field's type. The dataclass's own ``__post_init__`` still checks ranges; this
module checks only types.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Mapping

from hlmrf.errors import SettingsError

__all__ = ["settings_from_mapping", "parse_bool", "TRUE_WORDS", "FALSE_WORDS"]

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def parse_bool(text: str, name: str = "value", what: str = "option") -> bool:
    """``"yes"`` -> True; anything but the words of :data:`TRUE_WORDS`/:data:`FALSE_WORDS` is an error."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(f"{what} {name}={_show(text)} is not a boolean; write one of "
                        f"{', '.join(TRUE_WORDS + FALSE_WORDS)}")


def _base_types(hint) -> tuple[tuple, bool]:
    """``(types, optional)`` of a field annotation: ``float | None`` -> ``((float,), True)``."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        args = typing.get_args(hint)
        return tuple(a for a in args if a is not type(None)), type(None) in args
    return (hint,), False


def _convert(field: dataclasses.Field, hint, name: str, value: Any, what: str) -> Any:
    kinds, optional = _base_types(hint)
    meta = field.metadata or {}
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if optional:
            return None
        raise SettingsError(f"{what} {name} needs a value, not {_show(value)}")
    kind = kinds[0] if len(kinds) == 1 else None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return parse_bool(value, name, what)
        raise SettingsError(f"{what} {name}={_show(value)} is not a boolean; write one of "
                            f"{', '.join(TRUE_WORDS + FALSE_WORDS)}")
    if kind is int:
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            try:
                return int(text)
            except ValueError:
                raise SettingsError(f"{what} {name}={_show(value)} is not a whole number") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{what} {name}={_show(value)} is not a whole number")
        return value
    if kind is float:
        if isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                raise SettingsError(f"{what} {name}={_show(value)} is not a number") from None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value)
        else:
            raise SettingsError(f"{what} {name}={_show(value)} is not a number")
        if math.isnan(out) or (math.isinf(out) and not meta.get("allow_inf")):
            allowed = "a number or inf" if meta.get("allow_inf") else "a finite number"
            raise SettingsError(f"{what} {name}={_show(value)} must be {allowed}")
        return out
    if kind is str:
        if not isinstance(value, str):
            raise SettingsError(f"{what} {name}={_show(value)} must be a string")
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise SettingsError(f"{what} {name}={_show(value)} is not one of "
                                f"{', '.join(map(str, choices))}")
        return value
    return value  # another type: the dataclass checks it


def settings_from_mapping(cls, mapping: Mapping[str, Any], what: str = "option"):
    """Build ``cls`` (a dataclass) from ``mapping``, checking names and value types.

    Raises :class:`~hlmrf.errors.SettingsError` for an unknown key (listing the valid ones) or a
    value that does not fit its field; then ``cls(...)`` validates ranges as usual.
    """
    if not isinstance(mapping, Mapping):
        raise SettingsError(f"{what}s must be a mapping of names to values, not "
                            f"{type(mapping).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in mapping if k not in fields)
    if unknown:
        raise SettingsError(f"unknown {what}(s) {', '.join(unknown)}; "
                            f"valid {what}s are {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    typed = {k: _convert(fields[k], hints.get(k), k, v, what) for k, v in mapping.items()}
    return cls(**typed)
