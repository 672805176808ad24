"""The data-integrity record: one row per write and read-back of the data-integrity users.

Why a module of its own: the Locust side (kvusers.py) writes these rows and the engine side
merges them into the trial's `integrity.csv`; both import the one column list from here, so
this module is standard library only (no locust, no pandas).

Rows (docs/results.md, integrity.csv): `ts` (epoch s, when the client got the answer),
`op` (write | read), `key`, `ordinal`, `outcome` (write: acked | failed; read: found |
missing | stale | failed), and the identity that answered, from the X-Chaoslab-* headers
of chaoslab/kv: `pod`, `node`, `volume`, `starts` (empty when the request failed).
"""

from __future__ import annotations

import csv
from pathlib import Path

INTEGRITY_CSV = "integrity.csv"
INTEGRITY_COLUMNS = ("ts", "op", "key", "ordinal", "outcome", "pod", "node", "volume", "starts")
PART_PATTERN = "integrity-*.csv"
"""Each Locust process writes its own part, named by pid, in the stream folder."""


def read_parts(stream_dir: Path) -> list[dict[str, str]]:
    """Every process's rows, ordered by `ts`; a part's torn last line (a killed process)
    is dropped. [] when there is no part."""
    rows: list[dict[str, str]] = []
    for part in sorted(stream_dir.glob(PART_PATTERN)):
        with part.open(newline="", encoding="utf-8") as handle:
            text = handle.read()
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        rows += [row for row in csv.DictReader(text.splitlines()) if None not in row.values()]
    rows.sort(key=lambda row: float(row["ts"]))
    return rows


def merge_parts(stream_dir: Path, out_path: Path) -> int:
    """Merge every process's part into `out_path` (`read_parts`); the number of rows.

    Writes nothing (and returns 0) when no part exists, so runs without data-integrity
    users have no integrity.csv.
    """
    if not any(stream_dir.glob(PART_PATTERN)):
        return 0
    rows = read_parts(stream_dir)
    partial = out_path.with_name(out_path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=INTEGRITY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(out_path)
    return len(rows)
