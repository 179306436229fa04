"""Moved to :mod:`hlmrf.infra.progress`; kept so that old imports work."""
from hlmrf.infra.progress import Progress  # noqa: F401
