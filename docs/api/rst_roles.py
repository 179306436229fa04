"""A griffe extension for the API reference: checks and renders the docstrings' reST roles.

The docstrings cross-reference with reST roles (``:class:`Result```, ``:func:`~hlmrf.infra.run_cli```),
which mkdocstrings would print verbatim and never check. This extension resolves each target as
Python would from the documented object (its members, its module's imports, then the package
path; a leading dot is relative to the module's package) and logs a warning for a target that
names no object of hlmrf or vqa_adapters, so ``mkdocs build --strict`` fails on a broken or
renamed reference. The role is then rendered as inline code (``~`` shows the last component, as
in Sphinx). Targets outside the documented packages (numpy, torch, the standard library) are not
checked. It also rewrites this codebase's compact numpydoc items, ``name : what it is``, as a
name and a description, so that the text after the colon is not shown as the parameter's type.
"""
from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>class|func|meth|mod|attr|data|exc|obj|const):`(?P<target>[^`]+)`")


class RstRoles(griffe.Extension):
    """Resolve, check and render the reST cross-reference roles of every docstring.

    Parameters
    ----------
    packages : the top-level packages whose objects the references are checked against.
    """

    def __init__(self, packages=("hlmrf", "vqa_adapters")):
        super().__init__()
        self.packages = tuple(packages)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        for top in self.packages:  # references cross packages: load the other one too
            if top not in loader.modules_collection:
                try:
                    loader.load(top)
                except ImportError:  # pragma: no cover - not installed beside the docs
                    pass
        for obj in _walk(pkg):
            doc = obj.docstring
            if doc is None or ":" not in doc.value:
                continue
            doc.value = _describe_items(doc.value)
            doc.value = ROLE.sub(lambda m, o=obj: _render(o, m, loader.modules_collection,
                                                          self.packages), doc.value)


_ITEM_SECTIONS = {"Parameters", "Other Parameters", "Attributes", "Returns", "Yields", "Receives"}
_ITEM = re.compile(r"(?P<names>[A-Za-z_*][\w*]*(?:, [A-Za-z_*][\w*]*)*) : (?P<rest>.+)")
_TYPE = re.compile(r"[\w.\[\]]+(?:\s*\|\s*[\w.\[\]]+)*(?:, optional)?")


def _describe_items(text: str) -> str:
    """Rewrite this codebase's compact items ``name : what it is`` (numpydoc would read the text
    after the colon as a type) as ``name`` and an indented description; ``name : type`` stays."""
    lines = text.split("\n")
    out, section = [], None
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.strip() and set(following.strip()) == {"-"} and line.strip():
            section = line.strip()
        m = _ITEM.fullmatch(line) if section in _ITEM_SECTIONS else None
        if m and not _TYPE.fullmatch(m.group("rest").strip()):
            out += [m.group("names"), "    " + m.group("rest")]
        else:
            out.append(line)
    return "\n".join(out)


def _walk(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _render(obj, match, collection, packages) -> str:
    target = match.group("target").strip()
    title = None
    if "<" in target and target.endswith(">"):  # :role:`title <target>`
        title, target = (s.strip() for s in target[:-1].split("<", 1))
    short = target.startswith("~")
    target = target.lstrip("~").removesuffix("()")
    path = _resolve(obj, target, collection, packages)
    if path is False:
        where = f"{obj.relative_filepath}:{obj.docstring.lineno}" if obj.docstring.lineno else obj.path
        griffe.logger.warning(f"{where}: broken cross-reference {match.group(0)} in the "
                              f"docstring of {obj.path}: no such object")
    shown = title or (target.rsplit(".", 1)[-1] if short else target)
    return f"`{shown}`"


def _resolve(obj, target: str, collection, packages):
    """The full path of ``target`` seen from ``obj``; ``None`` outside the checked packages;
    ``False`` when it names nothing."""
    candidates = []
    if target.startswith("."):
        module = obj.module
        package = module.path if module.is_package else module.path.rpartition(".")[0]
        candidates.append(package + target)
        candidates.append(module.path + target)
    else:
        head, _, rest = target.partition(".")
        try:
            base = obj.resolve(head)
            candidates.append(base + ("." + rest if rest else ""))
        except griffe.NameResolutionError:
            pass
        candidates.append(target)
        # a name of the enclosing module or package written without its prefix
        module = obj.module
        while module is not None:
            candidates.append(f"{module.path}.{target}")
            module = module.parent
    outside = True
    for path in candidates:
        if path.split(".", 1)[0] not in packages:
            continue
        outside = False
        if _exists(path, collection):
            return path
    return None if outside else False


def _exists(path: str, collection) -> bool:
    try:
        collection[path]
    except (KeyError, ValueError):
        return False
    except griffe.AliasResolutionError:  # re-exported from outside the checked packages
        return True
    return True
