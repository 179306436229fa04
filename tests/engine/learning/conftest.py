import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the synthetic-data helper beside the tests

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "simple-acquaintances"
