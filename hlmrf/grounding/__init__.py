"""Stage 3: grounding. Join plans (what to join) apart from their executor (how)."""
from hlmrf.grounding.ground import (
    DEFAULT_MAX_GROUND_RULES,
    RuleEstimate,
    check_program,
    estimate_grounding,
    ground,
)
from hlmrf.grounding.plan import JoinPlan, plan_rule

__all__ = ["DEFAULT_MAX_GROUND_RULES", "JoinPlan", "RuleEstimate", "check_program",
           "estimate_grounding", "ground", "plan_rule"]
