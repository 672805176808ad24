"""Hand-written manifests (a tutorial's Deployment, Service, ConfigMap and Secret) on real nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.experiments.lessons import events_of, fault_times, first_event_after, measure_window, min_ready_endpoints
from tests.realnodes.conftest import save_numbers

pytestmark = pytest.mark.realnodes

TUTORIAL = Path(__file__).resolve().parent / "tutorial"


def test_a_tutorial_deployment_survives_a_pod_delete_and_its_replacement_reads_config_and_secret(run_on_nodes) -> None:
    result = run_on_nodes(TUTORIAL / "hello-pod-delete.yaml")
    save_numbers("tutorial-hello-pod-delete", result)
    (trial,) = result.run.trials
    (deleted_at,) = fault_times(trial)
    start, end = measure_window(trial)
    # The replacement is Ready only once it read the ConfigMap's page and the Secret's
    # token (its readiness probe's page exists only then): an endpoint added after the delete.
    assert first_event_after(trial, "endpoint_added", deleted_at) < 8
    assert min_ready_endpoints(trial, end - 0.5, end) == 2
    assert min_ready_endpoints(trial, start, end) >= 1  # the other replica served throughout
    assert len(events_of(trial, "pod_deleted")) >= 1
    load = trial.load
    assert load["requests"].sum() > 0
    assert load["failures"].sum() <= 0.05 * load["requests"].sum(), load["failures"].sum()
