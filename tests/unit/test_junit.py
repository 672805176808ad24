"""--junit output: one case per trial x fault, failing exactly where the verdict fails."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from chaoslab import analysis
from chaoslab.junit import junit_xml
from chaoslab.results import read_run

RUN = next((Path(__file__).parent.parent / "fixtures" / "runs").glob("replicas-pod-delete-*"))


def test_cases_fail_where_the_slo_is_missed() -> None:
    run = read_run(RUN)
    summary = analysis.summary_table(run)
    suite = ET.fromstring(junit_xml(summary, run.experiment.measure, run.experiment.name)).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(summary) == int(suite.get("tests"))

    failed = {c.get("classname") for c in cases if c.find("failure") is not None}
    passed = {c.get("classname") for c in cases if c.find("failure") is None}
    # The fixture: 1 replica has a ~3 s outage (misses 99 %), 3 replicas lose a few requests.
    assert failed == {f"{run.experiment.name}.replicas=1"}
    assert passed == {f"{run.experiment.name}.replicas=3"}
    assert int(suite.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
    message = next(c for c in cases if c.find("failure") is not None).find("failure").get("message")
    assert "below the SLO" in message


def test_incomplete_trials_are_skipped() -> None:
    run = read_run(RUN)
    summary = analysis.summary_table(run).assign(status="aborted")
    suite = ET.fromstring(junit_xml(summary, run.experiment.measure, "x")).find("testsuite")
    assert suite is not None
    assert all(c.find("skipped") is not None for c in suite.findall("testcase"))
    assert suite.get("skipped") == suite.get("tests")
