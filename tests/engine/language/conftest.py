import sys
from pathlib import Path

# The tests import their small helpers module by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
