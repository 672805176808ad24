"""JUnit XML from a run's summary, so CI pipelines show each trial x fault as a test case.

A case fails exactly when `analysis.verdict` would fail on its summary row (availability
below the SLO, or a fault's recovery over the budget or never recovered); trials that did
not complete are reported as skipped. Pure: summary in, XML text out.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pandas as pd

from chaoslab.analysis import verdict
from chaoslab.spec import MeasureSpec


def junit_xml(summary: pd.DataFrame, measure: MeasureSpec, suite: str) -> str:
    """One <testcase> per summary row, named `<trial> <fault id> <action>`."""
    root = ET.Element("testsuites")
    cases = ET.SubElement(root, "testsuite", name=suite)
    failures = skipped = 0
    for index in range(len(summary)):
        row = summary.iloc[index]
        fault = row.get("fault_id")
        has_fault = isinstance(fault, str) and fault != ""
        name = f"{row['trial']} {fault} {row['action']}" if has_fault else f"{row['trial']} (no fault)"
        case = ET.SubElement(cases, "testcase", classname=f"{suite}.{row.get('label', 'all trials')}", name=name)
        seconds = row.get("fault_window_s")
        if isinstance(seconds, float) and not math.isnan(seconds):
            case.set("time", f"{seconds:.3f}")
        if row.get("status") != "completed":
            skipped += 1
            ET.SubElement(case, "skipped", message=f"trial {row.get('status', 'unknown')}")
            continue
        judged = verdict(summary.iloc[[index]], measure)
        if not judged.passed:
            failures += 1
            failure = ET.SubElement(case, "failure", message=judged.reasons[0])
            failure.text = "\n".join(judged.reasons)
    cases.set("tests", str(len(summary)))
    cases.set("failures", str(failures))
    cases.set("skipped", str(skipped))
    cases.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
