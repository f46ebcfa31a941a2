"""The quality suite's verdicts: what counts as a drop, and how each scene's figures become targets and tables."""

from __future__ import annotations

from typing import Any

from benchmarks.quality import _tables, _targets, stability


def _curve(values: list[float]) -> list[dict[str, Any]]:
    return [{"step": 100 * index, "seconds": index, "psnr": value, "ssim": 0.9, "gaussians": 1000}
            for index, value in enumerate(values)]  # fmt: skip


def test_a_drop_after_a_scheduled_reset_is_forgiven_for_100_steps_and_others_are_not() -> None:
    # GIVEN a curve that collapses at the reset (step 1000) and dips again at step 1500
    values = [10, 20, 24, 25, 26, 27, 27.5, 28, 28.3, 28.6, 4.0, 27.0, 28.8, 29.0, 29.2, 27.0, 29.4, 29.6]

    # WHEN judged with the reset at step 1000
    verdict = stability(_curve(values), resets=[1000])

    # THEN only the dip at 1500 counts, and the final score is measured against the best
    assert verdict["largest_drop_db"] == 2.2 and verdict["largest_drop_at"] == 1500
    assert verdict["best_db"] == 29.6 and verdict["final_below_best_db"] == 0.0
    # AND without a scheduled reset the collapse itself is the worst drop
    assert stability(_curve(values), resets=[])["largest_drop_at"] == 1000


def test_early_drops_and_a_final_below_the_best_are_reported() -> None:
    # GIVEN a curve that wobbles before step 500 and ends 0.5 dB under its best
    verdict = stability(_curve([10, 20, 15, 25, 26, 27, 28, 27.5]), resets=[])

    # THEN the early wobble is ignored, the late one counted, and the final gap reported
    assert verdict["largest_drop_db"] == 0.5 and verdict["largest_drop_at"] == 700
    assert verdict["final_below_best_db"] == 0.5


def _scene(key: str, final: float, tuned_on: bool = False, real: bool = False) -> dict[str, Any]:
    return {"key": key, "title": key, "tuned_on": tuned_on, "real": real, "photos": 32, "registered": 32,
            "curve": _curve([10, 20, 25, final]), "train_seconds": 390.0, "resolution": [320, 240],
            "full_size": {"psnr": final - 1, "ssim": 0.9, "resolution": [640, 480]},
            "floaters": {"alpha_mean": 0.99, "hazy_fraction": 0.01, "floater_fraction": 0.02,
                         "depth_error_median": 0.03, "points": 1800},
            "stability": stability(_curve([10, 20, 25, final]), []),
            "compression": {"loss_db": 0.02}}  # fmt: skip


def test_the_sample_must_reach_31_5_db_other_synthetic_scenes_28_and_the_real_one_is_reported() -> None:
    # GIVEN the sample at 31.0 dB, another synthetic scene at 28.5 dB and a real capture at 14 dB
    measured = [_scene("sample", 31.0, tuned_on=True), _scene("drone", 28.5), _scene("real", 14.0, real=True)]

    # WHEN turned into targets and tables
    targets = {target.goal: target.met for target in _targets(measured)}
    tables = _tables(measured)

    # THEN the sample misses its 31.5 dB, the drone meets 28 dB, and the real capture has no dB target
    assert targets["sample: >= 31.5 dB held-out (default preset, CPU)"] is False
    assert targets["drone: >= 28 dB held-out (default preset, CPU)"] is True
    assert not any(goal.startswith("real: >=") for goal in targets)
    # AND every scene has a row saying at which resolution it was scored, with the full-size figure beside it
    assert [row[4] for row in tables[0].rows] == ["320x240"] * 3
    assert tables[0].rows[0][5] == "30.00 dB at 640x480"
