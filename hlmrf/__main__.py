"""``python -m hlmrf COMMAND ...``: the command-line tools under one name.

``python -m hlmrf infer ...`` is ``hlmrf-infer ...`` and ``python -m hlmrf learn ...`` is
``hlmrf-learn ...``; with no command, or ``-h``, it lists the commands. It only dispatches.
"""
from __future__ import annotations

import sys

_COMMANDS = {
    "infer": ("hlmrf.cli.infer", "MAP inference: ground rules on facts, write <PREDICATE>.txt"),
    "learn": ("hlmrf.cli.learn", "weight learning: fit rule weights to truth, write the rules"),
}


def _usage() -> str:
    from hlmrf.cli.reference import version_text

    lines = ["usage: python -m hlmrf {infer,learn} ... | --version", "",
             f"{version_text()}: Probabilistic Soft Logic in pure Python.", "", "commands:"]
    lines += [f"  {name:<7} {text} (also hlmrf-{name})" for name, (_, text) in _COMMANDS.items()]
    lines += ["", "python -m hlmrf COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to ``hlmrf-infer`` or ``hlmrf-learn``; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from hlmrf.cli.reference import version_text

        print(version_text())
        return 0
    if argv[0] not in _COMMANDS:
        print(f"python -m hlmrf: error: unknown command {argv[0][:80]!r}; the commands are "
              f"{', '.join(_COMMANDS)}\n\n{_usage()}", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(_COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
