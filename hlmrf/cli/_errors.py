"""Moved to :mod:`hlmrf.infra.cli`; ``run_reporting_errors`` is :func:`~hlmrf.infra.cli.run_cli`."""
from hlmrf.infra.cli import run_cli as run_reporting_errors  # noqa: F401
