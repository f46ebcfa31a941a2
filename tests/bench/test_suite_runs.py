"""`python -m benchmarks` writes results.json and RESULTS.md after each suite, keeping what other runs saved."""

from __future__ import annotations

import benchmarks.__main__ as bench
from benchmarks.common import SuiteResult
from benchmarks.report import load, save_json


def test_a_suite_another_run_saved_meanwhile_is_kept(tmp_path, monkeypatch):
    # GIVEN a run of one suite, during which another run (begun earlier, say) saves a suite of its own
    monkeypatch.setattr(bench, "HERE", tmp_path)

    def suite_while_another_run_saves(workspace) -> SuiteResult:
        other = SuiteResult("gpu", "GPU training", machine={"date": "2026-12-07"}, mode="full", seconds=1.0)
        save_json({"gpu": other}, tmp_path / "results.json")
        return SuiteResult("burst", "Burst")

    monkeypatch.setitem(bench.SUITES, "burst", suite_while_another_run_saves)
    # WHEN this run saves its suite
    bench.run_suites(bench.parse_args(["--only", "burst"]), tmp_path / "work")
    # THEN both suites are in results.json and RESULTS.md
    assert set(load(tmp_path / "results.json")) == {"gpu", "burst"}
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "## GPU training" in markdown and "## Burst" in markdown
