"""What every benchmark here shares: isolated runs, interleaving, medians.

A case is a function that does its work once and returns a dict of figures
(``{"mbps": ..., ...}``). `isolated` runs one case in a fresh interpreter, so
that peak-RSS figures belong to that case alone; `interleave` runs every
case once per round (A B C A B C ...), so that drift on a noisy machine hits
all of them alike; `report` prints medians and per-round ratios to a base.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

Figures = dict[str, float]


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def isolated(script: Path, case: str, *args: str) -> Figures:
    """Run ``script --case CASE ARGS`` in a new interpreter; return its figures."""
    result = subprocess.run(
        [sys.executable, str(script), "--case", case, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{result.stderr}")
    figures: Figures = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def interleave(
    cases: Mapping[str, Callable[[], Figures]], rounds: int
) -> dict[str, list[Figures]]:
    """Run every case once per round, in order, *rounds* times."""
    results: dict[str, list[Figures]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            results[name].append(case())
    return results


def median(runs: list[Figures], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def ratio(runs: list[Figures], base: list[Figures], key: str) -> float:
    """Median of the round-by-round ratios of *key* to the base case's."""
    return statistics.median(a[key] / b[key] for a, b in zip(runs, base, strict=True))


def report(
    title: str,
    results: dict[str, list[Figures]],
    base: str,
    columns: list[tuple[str, str, str]],
) -> list[str]:
    """A Markdown table: one row per case; *columns* are (key, heading, format).

    The first column also gets a ratio to *base*. Returns the lines, printed.
    """
    key0 = columns[0][0]
    head = ["case", *(heading for _, heading, _ in columns), f"ratio to {base}"]
    lines = [f"\n{title}\n", "| " + " | ".join(head) + " |"]
    lines.append("|" + "|".join("---" for _ in head) + "|")
    for name, runs in results.items():
        cells = [name]
        for key, _, fmt in columns:
            cells.append(format(median(runs, key), fmt) if key in runs[0] else "-")
        cells.append(f"{ratio(runs, results[base], key0):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    for line in lines:
        print(line)
    return lines
