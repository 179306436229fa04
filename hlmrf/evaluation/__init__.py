"""Stage 7: evaluation of inferred values against truth."""
from hlmrf.evaluation.metrics import (
    auprc,
    auroc,
    categorical_accuracy,
    continuous_metrics,
    discrete_metrics,
    evaluate,
    ranking_metrics,
)

__all__ = ["auprc", "auroc", "categorical_accuracy", "continuous_metrics", "discrete_metrics",
           "evaluate", "ranking_metrics"]
