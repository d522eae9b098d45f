"""The policy engine: policy documents as data (metrics/policies/*.yaml), rule kinds in code.

Public API::

    from metrics.policy import evaluate, EnterpriseYear, Fact, PvProject, Storage, ProductYear
    result = evaluate(EnterpriseYear("E1", 2025, recycling_wh=4_200_000_000, facts=(...)), load_documents())
    result.candidates, result.chosen, result.total, result.to_dict()

See docs/policy-engine.md.
"""

from metrics.policy.documents import PolicyDocument, Reach, Rule
from metrics.policy.engine import STATUSES, Candidate, Evaluation, choose, evaluate, evaluate_pv_project
from metrics.policy.inputs import FACT_KINDS, EnterpriseYear, Fact, ProductYear, PvProject, Storage
from metrics.policy.pv_storage import (
    Check,
    Interval,
    check_pv_produced_after,
    check_storage_duration,
    check_storage_power_ratio,
    discharge_episodes,
    pv_storage_award,
    telemetry_checks,
)
from metrics.policy.recycling import recycling_award

__all__ = [
    "FACT_KINDS", "STATUSES", "Candidate", "Check", "EnterpriseYear", "Evaluation", "Fact", "Interval",
    "PolicyDocument", "ProductYear", "PvProject", "Reach", "Rule", "Storage", "check_pv_produced_after",
    "check_storage_duration", "check_storage_power_ratio", "choose", "discharge_episodes", "evaluate",
    "evaluate_pv_project", "pv_storage_award", "recycling_award",
    "telemetry_checks",
]
