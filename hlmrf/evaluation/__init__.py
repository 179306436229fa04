"""Stage 7: evaluation of inferred values against truth."""
from hlmrf.evaluation.metrics import (
    auprc,
    auroc,
    categorical_accuracy,
    categorical_metrics,
    continuous_metrics,
    discrete_metrics,
    evaluate,
    ranking_metrics,
)

__all__ = ["auprc", "auroc", "categorical_accuracy", "categorical_metrics",
           "continuous_metrics", "discrete_metrics",
           "evaluate", "ranking_metrics"]
