"""The console suite keeps the end-to-end test's screenshots and says which of them a person has looked at."""

from __future__ import annotations

from benchmarks import console

PASSED = {"test_passed": True, "test_seconds": 118.4}


def shots(**fingerprints: str) -> dict:
    return {name: fingerprints.get(name.removesuffix(".png").replace("-", "_"), "0" * 16) for name in console.SHOTS}


def test_a_screenshot_counts_as_looked_at_only_while_its_bytes_are_the_ones_described(monkeypatch):
    # GIVEN descriptions of the four kept screenshots, and a run whose scene screenshot is a new image
    monkeypatch.setattr(
        console, "LOOKED_AT", {plot: ("0" * 16, f"what {plot} shows") for plot in console.SHOTS.values()}
    )
    figures = PASSED | {"screenshots": shots(console_scene_opened="f" * 16)}
    # WHEN reported
    result = console.report(figures)
    # THEN every screenshot is shown, three with what was seen in them, the new one as not looked at yet
    assert result.plots == list(console.SHOTS.values())
    assert result.notes[0] == "- `console-training-desktop.png`: what console-training-desktop.png shows"
    assert "not looked at yet" in result.notes[3] and "console-scene-opened.jpg" in result.notes[3]
    # AND the test's target is met, the looking-at one missed until the new image is described
    assert [target.met for target in result.targets] == [True, False]
    assert "118 s" in result.targets[0].measured and "3 of 4" in result.targets[1].measured


def test_a_failed_end_to_end_test_misses_its_target(monkeypatch):
    # GIVEN a run whose test failed before taking any screenshot WHEN reported THEN both targets are missed
    result = console.report({"test_passed": False, "test_seconds": None, "screenshots": {}})
    assert [target.met for target in result.targets] == [False, False] and result.plots == []
    assert "failed" in result.targets[0].measured
