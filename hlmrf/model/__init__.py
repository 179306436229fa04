"""Stage 4: the hinge-loss MRF as arrays, and the per-kind math of its terms."""
from hlmrf.model.hlmrf import HLMRF, GroundIndex
from hlmrf.model.terms import Kind

__all__ = ["HLMRF", "GroundIndex", "Kind"]
