"""Every flow as a Prefect deployment, with its schedule. The one place schedules live.

``greengauge flows serve`` runs them all on this machine (``prefect.serve``); ``greengauge flows
deploy --work-pool P`` registers the same deployments with a work pool, for workers on other
machines (docs/flows.md). Flows read GREENGAUGE_DATABASE_URL from the environment of the process
that runs them, so no database URL (or password) is stored in Prefect.
"""

from __future__ import annotations

from datetime import timedelta

from prefect import Flow
from prefect.deployments.runner import EntrypointType, RunnerDeployment

from flows.backfill import backfill_flow
from flows.eligibility import eligibility_flow
from flows.metrics import metrics_flow
from flows.quality import quality_flow
from flows.rollup import rollup_flow

FLOWS: dict[str, Flow] = {
    "rollup": rollup_flow,
    "metrics": metrics_flow,
    "eligibility": eligibility_flow,
    "data-quality": quality_flow,
    "backfill": backfill_flow,
}

#: default schedules [s]; None: no schedule, runs on demand
SCHEDULES: dict[str, int | None] = {
    "rollup": 5 * 60,
    "metrics": 15 * 60,
    "eligibility": 60 * 60,
    "data-quality": 60 * 60,
    "backfill": None,
}


def schedules(overrides: dict[str, int | None] | None = None) -> dict[str, int | None]:
    """The default schedules with ``overrides`` applied (0 or None: unscheduled)."""
    out = dict(SCHEDULES)
    for name, every in (overrides or {}).items():
        if name not in FLOWS:
            raise ValueError(f"no flow {name!r} (known: {', '.join(FLOWS)})")
        if every is not None and every < 0:
            raise ValueError(f"{name}: the interval must be positive seconds, got {every}")
        out[name] = every or None
    return out


def deployments(overrides: dict[str, int | None] | None = None) -> list[RunnerDeployment]:
    out = []
    for name, every in schedules(overrides).items():
        out.append(FLOWS[name].to_deployment(
            name=f"greengauge-{name}",
            interval=timedelta(seconds=every) if every else None,
            concurrency_limit=1,  # a run still going when the next is due makes the next wait
            tags=["greengauge"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        ))
    return out


def serve(overrides: dict[str, int | None] | None = None, limit: int | None = None) -> None:
    """Serve every deployment from this process until interrupted."""
    from prefect import serve as prefect_serve

    # schedules stay active while the process restarts (the default would pause them on shutdown)
    prefect_serve(*deployments(overrides), limit=limit, pause_on_shutdown=False)


def deploy(work_pool: str, overrides: dict[str, int | None] | None = None) -> list:
    """Register the deployments with a work pool (process workers with greengauge installed)."""
    from prefect import deploy as prefect_deploy

    return prefect_deploy(*deployments(overrides), work_pool_name=work_pool, build=False, push=False,
                          print_next_steps_message=False)
