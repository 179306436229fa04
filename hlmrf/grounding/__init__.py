"""Stage 3: grounding. Join plans (what to join) apart from their executor (how)."""
from hlmrf.grounding.ground import check_program, ground
from hlmrf.grounding.plan import JoinPlan, plan_rule

__all__ = ["JoinPlan", "check_program", "ground", "plan_rule"]
