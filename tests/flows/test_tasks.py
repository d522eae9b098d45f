"""flows/tasks.py: the per-enterprise flows run a bounded thread pool (each thread keeps a connection)."""

import pytest

import flows.tasks
from flows.eligibility import eligibility_flow
from flows.metrics import metrics_flow


def test_the_mapping_flows_have_a_bounded_pool(monkeypatch):
    for f in (metrics_flow, eligibility_flow):
        assert f.task_runner._max_workers == flows.tasks.FLOW_WORKERS
    monkeypatch.delenv("GREENGAUGE_FLOW_WORKERS", raising=False)
    assert flows.tasks._whole("GREENGAUGE_FLOW_WORKERS", 4) == 4  # the default


@pytest.mark.parametrize("raw", ["0", "-2", "four", ""])
def test_a_bad_worker_count_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("GREENGAUGE_FLOW_WORKERS", raw)
    with pytest.raises(ValueError, match="GREENGAUGE_FLOW_WORKERS=.*at least 1"):
        flows.tasks._whole("GREENGAUGE_FLOW_WORKERS", 4)
    monkeypatch.setenv("GREENGAUGE_FLOW_WORKERS", "12")
    assert flows.tasks._whole("GREENGAUGE_FLOW_WORKERS", 4) == 12
