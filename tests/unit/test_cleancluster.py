"""The clean-cluster rule the e2e and real-node suites share (tests/cleancluster.py), on a
stand-in for the API: those suites run it only against a real cluster (`make e2e`)."""

from __future__ import annotations

from types import SimpleNamespace as Obj
from typing import Any

import pytest

from tests import cleancluster
from tests.e2e import localcluster


class FakeCore:
    """What cleancluster reads and writes of CoreV1Api: nodes and chaoslab namespaces."""

    def __init__(self) -> None:
        self.nodes: dict[str, Obj] = {}
        self.namespaces: list[str] = []

    def add_node(self, name: str, *, ready: str = "True", unschedulable: bool = False, taints: tuple[str, ...] = ()) -> None:
        self.nodes[name] = Obj(
            metadata=Obj(name=name),
            status=Obj(conditions=[Obj(type="Ready", status=ready)]),
            spec=Obj(unschedulable=unschedulable, taints=[Obj(key=key, effect="NoSchedule") for key in taints]),
        )

    def list_node(self) -> Obj:
        return Obj(items=list(self.nodes.values()))

    def list_namespace(self, label_selector: str) -> Obj:
        assert label_selector == cleancluster.MANAGED_BY_SELECTOR
        return Obj(items=[Obj(metadata=Obj(name=name)) for name in self.namespaces])

    def patch_node(self, name: str, body: dict[str, Any]) -> None:
        self.nodes[name].spec.unschedulable = body["spec"]["unschedulable"]

    def delete_namespace(self, name: str) -> None:
        self.namespaces.remove(name)


def test_a_clean_cluster_has_no_problems_and_the_control_planes_taint_is_not_one() -> None:
    core = FakeCore()
    core.add_node("cp", taints=(localcluster.CONTROL_PLANE_LABEL,))
    core.add_node("w1")
    assert cleancluster.api_problems(core) == []


def test_namespaces_cordons_readiness_and_taints_are_each_named() -> None:
    core = FakeCore()
    core.add_node("w1", ready="Unknown", unschedulable=True, taints=("node.kubernetes.io/unreachable",))
    core.namespaces.append("chaoslab-web-1")
    assert cleancluster.api_problems(core) == [
        "namespace chaoslab-web-1 left behind",
        "node w1 is cordoned",
        "node w1 is Ready=Unknown",
        "node w1 has taint node.kubernetes.io/unreachable:NoSchedule",
    ]


def test_repair_uncordons_and_deletes_the_namespaces() -> None:
    core = FakeCore()
    core.add_node("w1", unschedulable=True)
    core.namespaces.append("chaoslab-web-1")
    cleancluster.repair_api(core)
    assert cleancluster.api_problems(core) == []


def test_settled_waits_for_the_problems_to_go_and_gives_up_at_its_deadline() -> None:
    answers = iter([["a"], ["a"], []])
    assert cleancluster.settled(lambda: next(answers), settle_s=5.0, poll_s=0.0) == []
    assert cleancluster.settled(lambda: ["stuck"], settle_s=0.0, poll_s=0.0) == ["stuck"]


def test_left_clean_repairs_after_a_test_that_changed_the_cluster_and_fails_it() -> None:
    problems: list[str] = []
    repaired: list[bool] = []
    with pytest.raises(AssertionError, match=r"the test left the cluster changed: \['node w1 is cordoned'\]"):
        with cleancluster.left_clean("test cluster", lambda: list(problems), lambda: repaired.append(True), settle_s=0.0, poll_s=0.0):
            problems.append("node w1 is cordoned")
    assert repaired == [True]


def test_left_clean_refuses_to_start_on_a_cluster_that_is_not_clean() -> None:
    with pytest.raises(AssertionError, match=r"the test cluster was not clean before the test: \['x'\]"):
        with cleancluster.left_clean("test cluster", lambda: ["x"], lambda: None, settle_s=0.0, poll_s=0.0):
            pytest.fail("the test body must not run")
