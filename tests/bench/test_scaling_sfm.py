"""The SfM scaling suite's arithmetic and verdicts: exponents, extrapolation, sizes, and the cheap 12 MP photos."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from benchmarks.common import Workspace
from benchmarks.scaling_sfm import (
    Plan,
    _result,
    base_photos,
    distinct_photo,
    extrapolate,
    fit_exponent,
    within_linear,
)
from PIL import Image


def test_the_exponent_of_a_power_law_is_its_log_log_slope() -> None:
    # GIVEN seconds that grow as photos^1.5, and as photos^1 with noise
    photos = [32, 128, 512]
    exact = [0.02 * n**1.5 for n in photos]
    noisy = [0.5 * n * factor for n, factor in zip(photos, (1.1, 0.9, 1.05), strict=True)]

    # THEN the fit recovers the exponents
    assert fit_exponent(photos, exact) == pytest.approx(1.5)
    assert fit_exponent(photos, noisy) == pytest.approx(1.0, abs=0.06)
    # AND it needs two sizes with a positive value: a step that took no time has no exponent
    assert fit_exponent([32], [1.0]) is None
    assert fit_exponent([32, 128], [0.0, 1.0]) is None


def test_extrapolation_follows_the_fit_from_the_largest_capture() -> None:
    # GIVEN a quadratic step measured at 128 and 512 photos
    photos, seconds = [128, 512], [10.0, 160.0]

    # THEN 1,000 photos take (1000 / 512)^2 times the largest measurement
    assert extrapolate(photos, seconds, 1000) == pytest.approx(160.0 * (1000 / 512) ** 2)
    assert extrapolate([512], [1.0], 1000) is None


def test_linear_growth_is_measured_per_photo() -> None:
    # THEN seconds per photo that double from the smallest to the largest capture grow by 2, linear ones by 1
    assert within_linear([128, 512], [10.0, 80.0]) == pytest.approx(2.0)
    assert within_linear([512, 128], [40.0, 10.0]) == pytest.approx(1.0)
    assert within_linear([128], [10.0]) is None


def test_sizes_come_from_the_mode_or_the_environment() -> None:
    # THEN the full mode measures the sizes with the stage's own exhaustive limit
    full = Plan.for_workspace(quick=False, environ={})
    assert full.sizes == (32, 128, 512) and full.large == (128, 1600)
    assert full.validation_photos == (300, 1000) and full.validation_megapixels == 12
    assert full.exhaustive_limit is None
    # AND quick mode is small and lowers the limit so the bounded matchers still run
    quick = Plan.for_workspace(quick=True, environ={})
    assert max(quick.sizes) <= 64 and quick.exhaustive_limit is not None and quick.exhaustive_limit < 32
    # AND the environment overrides either
    custom = Plan.for_workspace(quick=False, environ={"SCALING_SFM_SIZES": "16, 48", "SCALING_SFM_LARGE": "24x800",
                                                      "SCALING_SFM_VALIDATION": "50x4",
                                                      "SCALING_SFM_EXHAUSTIVE_LIMIT": "8"})  # fmt: skip
    assert (custom.sizes, custom.large, custom.validation_photos) == ((16, 48), (24, 800), (50,))
    assert (custom.validation_megapixels, custom.exhaustive_limit) == (4, 8)


def test_cheap_photos_are_valid_distinct_jpegs_of_their_own_size() -> None:
    # GIVEN two base photos of 0.3 MP, and five photos made from them
    bases = base_photos(0.3, 2)
    photos = [distinct_photo(bases[index % 2], index) for index in range(5)]

    # THEN every photo is a JPEG of about 0.3 MP that decodes to its base's pixels
    for index, data in enumerate(photos):
        with Image.open(io.BytesIO(data)) as photo, Image.open(io.BytesIO(bases[index % 2])) as base:
            assert photo.format == "JPEG" and 0.25e6 < photo.width * photo.height <= 0.3e6
            assert np.array_equal(np.asarray(photo), np.asarray(base))
    # AND no two photos share bytes or a size (the validator hashes only files of equal size)
    assert len(set(photos)) == len({len(data) for data in photos}) == 5
    # AND the bases compress like photos, not like flat colour or pure noise (0.1 to 1.5 bytes per pixel)
    assert all(0.1 < len(data) / 0.3e6 < 1.5 for data in bases)


def _run(layout: str, photos: int, models: int = 1, registered: int | None = None, matching_s: float = 1.0) -> dict:
    """One capture's figures as the child reports them: mapping grows as photos^1.4, the rest linearly."""
    steps = {"extraction": 0.1 * photos, "matching": matching_s, "mapping": 0.01 * photos**1.4,
             "georeferencing": 0.01, "undistortion": 0.002 * photos}  # fmt: skip
    matching = {"method": "spatial" if layout == "grid" else "sequential", "pairs": 10 * photos,
                "pairs_per_photo": 10.0, "verified_pairs_per_photo": 8.0}  # fmt: skip
    return {"layout": layout, "photos": photos, "width": 320, "seconds": steps, "matching": matching,
            "peak_rss_bytes": int(2e8 + 1e6 * photos), "peak_bytes": {step: int(1e8) for step in steps},
            "today": {"method": "spatial", "pairs": 25 * photos}, "models": models,
            "registered": photos if registered is None else registered}  # fmt: skip


def test_verdicts_catch_strips_and_superlinear_matching(tmp_path) -> None:
    # GIVEN a grid that fell apart into two models at 512 photos, and a walk whose matching per photo tripled
    runs = [_run("grid", 32), _run("grid", 128, matching_s=12.8), _run("grid", 512, models=2, registered=400,
                                                                          matching_s=51.2),
            _run("walk", 32), _run("walk", 128, matching_s=12.8), _run("walk", 512, matching_s=153.6)]  # fmt: skip
    plan = Plan((32, 128, 512), (128, 1600), (), 12, None)

    # WHEN the suite's result is made
    result = _result(runs, [], plan, Workspace(tmp_path, quick=False, plots_dir=tmp_path / "plots"))
    verdicts = {target.goal: target.met for target in result.targets}

    # THEN the grid's linear matching passes and the walk's tripling misses
    assert verdicts["grid (GPS): matching within 2x of linear beyond 100 photos"] is True
    assert verdicts["walk (no GPS): matching within 2x of linear beyond 100 photos"] is False
    # AND the strips are caught
    assert verdicts["every grid registers as one model, not as strips"] is False
    # AND the mapping exponent (1.4 by construction) is fitted, and 1,000 photos extrapolated along it
    mapping = result.figures["fits"]["grid/mapping"]
    assert mapping["exponent"] == pytest.approx(1.4)
    assert mapping["extrapolated_1000"] == pytest.approx(0.01 * 1000**1.4)
    # AND a log-log plot is written per step
    assert {"scaling_sfm_matching.png", "scaling_sfm_mapping.png"} <= set(result.plots)
    assert all((tmp_path / "plots" / name).is_file() for name in result.plots)
    assert math.isfinite(result.figures["fits"]["walk/total"]["exponent"])
