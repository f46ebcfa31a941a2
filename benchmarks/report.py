"""results.json and RESULTS.md: every suite's latest result, each with the machine and mode it ran in."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import SuiteResult

SUITE_ORDER = ("quality", "compress", "train", "sfm", "scaling-sfm", "scaling-splats", "lambdas", "validate", "local",
               "burst", "gpu", "cloud-demo", "console")  # fmt: skip
HERE = Path(__file__).resolve().parent
HEADER = """# Spaceport benchmarks

Written by `make bench` (`python -m benchmarks`); every figure below was measured by that command on the machine
named under its section. Rerun a part with `python -m benchmarks --only compress,train` (`--quick` for the small
variant); the other sections keep their last results. Raw figures: [results.json](results.json).

Where a section's load average exceeds its core count, other work shared the CPU while it ran: its absolute
seconds are pessimistic, while ratios between tools measured side by side in the same suite hold better.
"""


def load(path: Path) -> dict[str, SuiteResult]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: SuiteResult.from_dict(entry) for name, entry in data.get("suites", {}).items()}


def save_json(results: dict[str, SuiteResult], path: Path) -> None:
    payload = {"suites": {name: result.to_dict() for name, result in _ordered(results)}}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _ordered(results: dict[str, SuiteResult]) -> list[tuple[str, SuiteResult]]:
    rank = {name: index for index, name in enumerate(SUITE_ORDER)}
    return sorted(results.items(), key=lambda item: rank.get(item[0], len(rank)))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _machine_line(result: SuiteResult) -> str:
    m = result.machine
    versions = ", ".join(f"{name} {m[name]}" for name in ("python", "torch", "numba", "pycolmap", "splat_transform")
                         if m.get(name))  # fmt: skip
    gpu = m.get("gpu") or "no GPU"
    load = f"load average {m['load_average_1min']} when it ended; " if m.get("load_average_1min") is not None else ""
    return (f"*Measured {m.get('date')} on {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
            f"{gpu}; {versions}; {load}mode: {result.mode}; suite took {result.seconds:.0f} s.*")  # fmt: skip


def _section(result: SuiteResult) -> list[str]:
    lines = [f"## {result.title}", "", _machine_line(result), ""]
    if result.targets:
        lines += ["| Target | Measured | Result |", "|---|---|---|"]
        for target in result.targets:
            verdict = {True: "**pass**", False: "**miss**", None: "not measured"}[target.met]
            lines.append(f"| {_cell(target.goal)} | {_cell(target.measured)} | {verdict} |")
        lines.append("")
    for table in result.tables:
        lines += [f"**{table.title}**", "", "| " + " | ".join(map(_cell, table.columns)) + " |",
                  "|" + "---|" * len(table.columns)]  # fmt: skip
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
        lines.append("")
    lines += [f"![{plot}]({plot_path})" for plot, plot_path in ((p, f"plots/{p}") for p in result.plots)]
    if result.plots:
        lines.append("")
    lines += [f"{note}" for note in result.notes]
    if result.notes:
        lines.append("")
    return lines


def save_markdown(results: dict[str, SuiteResult], path: Path) -> None:
    lines = [HEADER]
    for _, result in _ordered(results):
        lines += _section(result)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def rewrite_section(name: str, report: Callable[[dict[str, Any]], SuiteResult], here: Path = HERE) -> None:
    """Write suite ``name``'s section again from its figures saved in results.json, without measuring anything
    (after describing what its screenshots show, say); its machine, mode and time stay those of the run."""
    results = load(here / "results.json")
    saved = results[name]
    result = report(saved.figures)
    result.machine, result.mode, result.seconds = saved.machine, saved.mode, saved.seconds
    results[name] = result
    save_json(results, here / "results.json")
    save_markdown(results, here / "RESULTS.md")
