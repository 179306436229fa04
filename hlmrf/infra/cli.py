"""How every command-line tool of hlmrf and vqa_adapters ends: one exit-code table, one line on
stderr.

============  ====  ==========================================================================
EXIT_OK        0    success
EXIT_IO        1    an output or system problem: OutputError, OSError (disk full, permission
                    denied, broken pipe), MemoryError
EXIT_INPUT     2    bad input: any other HlmrfError (rules, facts, settings, options)
EXIT_SOLVE     3    an infeasible model or a failed solve (InfeasibleError, SolverError)
EXIT_INTERRUPTED 130 Ctrl-C; nothing is written
============  ====  ==========================================================================

Anything else is a bug and still raises with its traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from hlmrf.errors import HlmrfError, InfeasibleError, OutputError, SolverError

__all__ = ["EXIT_OK", "EXIT_IO", "EXIT_INPUT", "EXIT_SOLVE", "EXIT_INTERRUPTED", "run_cli",
           "crop"]

EXIT_OK = 0
EXIT_IO = 1
EXIT_INPUT = 2
EXIT_SOLVE = 3
EXIT_INTERRUPTED = 130

MAX_MESSAGE = 4000
"""Characters of an error message printed; the rest is cropped (a 20 MB constant is not shown)."""


def crop(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    where = exc.filename if exc.filename is not None else None
    hint = ""
    if isinstance(exc, BrokenPipeError):
        return "the output pipe was closed before everything was printed"
    if getattr(exc, "errno", None) in (28, 122):  # ENOSPC, EDQUOT
        hint = "; free some space or choose another output location"
    elif isinstance(exc, PermissionError):
        hint = "; choose a location you can write to or fix its permissions"
    return (f"{where}: {reason}" if where is not None else reason) + hint


def run_cli(prog: str, fn: Callable[[], int], *, stderr=None) -> int:
    """Run ``fn`` and turn the errors hlmrf means into one line and an exit status."""
    def say(text: str) -> None:
        stream = stderr if stderr is not None else sys.stderr
        try:
            print(f"{prog}: {crop(text)}", file=stream)
            stream.flush()
        except (OSError, ValueError):  # stderr itself is gone
            pass

    try:
        return fn()
    except OutputError as exc:
        say(f"error: {exc}")
        return EXIT_IO
    except (InfeasibleError, SolverError) as exc:
        say(f"error: {exc}")
        return EXIT_SOLVE
    except HlmrfError as exc:
        say(f"error: {exc}")
        return EXIT_INPUT
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            _silence_stdout()
        say(f"error: {_os_message(exc)}")
        return EXIT_IO
    except MemoryError:
        say("error: out of memory: the problem does not fit in this machine's memory; reduce "
            "the input or raise the limit")
        return EXIT_IO
    except KeyboardInterrupt:
        say("interrupted; no output written")
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush does not fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass
