"""How the command-line tools turn errors into one line on stderr and an exit status.

0 success; 2 bad input (any other :class:`~hlmrf.errors.HlmrfError`); 3 an infeasible model or a
failed solve; 130 interrupted. Bugs still raise with their traceback.
"""
from __future__ import annotations

import sys
from typing import Callable

from hlmrf.errors import HlmrfError, InfeasibleError, SolverError


def run_reporting_errors(prog: str, fn: Callable[[], int]) -> int:
    try:
        return fn()
    except (InfeasibleError, SolverError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 3
    except HlmrfError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no output written", file=sys.stderr)
        return 130
