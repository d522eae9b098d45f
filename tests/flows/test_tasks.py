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


@pytest.mark.parametrize("raw", ["0", "many"])
def test_a_bad_batch_size_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("GREENGAUGE_FLOW_BATCH", raw)
    with pytest.raises(ValueError, match="GREENGAUGE_FLOW_BATCH=.*at least 1 \\(default 50\\)"):
        flows.tasks._whole("GREENGAUGE_FLOW_BATCH", 50)
    monkeypatch.delenv("GREENGAUGE_FLOW_BATCH")
    assert flows.tasks._whole("GREENGAUGE_FLOW_BATCH", 50) == 50


def test_a_batch_task_is_named_by_its_enterprises():
    from store.results import Enterprise

    name = flows.tasks.batch_name("metrics")
    ents = [Enterprise(1, "aa", "Asia/Shanghai"), Enterprise(2, "bb", "Asia/Shanghai")]
    assert name(parameters={"ents": ents}) == "metrics-aa…bb"
    assert name(parameters={"ents": ents[:1]}) == "metrics-aa"
    assert name(parameters={"ents": []}) == "metrics"
