"""Stage 2: facts. An in-memory fact store, and the loaders/writers that touch files."""
from hlmrf.data.store import ConstantTable, FactStore, PredicateData

__all__ = ["ConstantTable", "FactStore", "PredicateData"]
