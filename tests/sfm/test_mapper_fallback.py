"""When incremental mapping leaves most photos out, the global mapper gets its turn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from spaceport.sfm import stage
from spaceport.sfm.stage import SfmConfig, map_with_fallback


@dataclass
class FakeModel:
    registered: int

    def num_reg_images(self) -> int:
        return self.registered

    def num_points3D(self) -> int:  # noqa: N802 (pycolmap's name)
        return 0


def _mappers(monkeypatch: pytest.MonkeyPatch, incremental: int, global_: int) -> list[str]:
    called: list[str] = []

    def fake_map_images(database, images_dir, models_dir, config, progress=None):  # noqa: ANN001, ANN202
        called.append(config.mapper)
        return FakeModel(incremental if config.mapper == "incremental" else global_)

    monkeypatch.setattr(stage, "map_images", fake_map_images)
    return called


def test_a_stalled_incremental_model_is_replaced_by_the_global_mappers(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a street walk on which incremental mapping registers 3 of 29 photos and global mapping all 29
    called = _mappers(monkeypatch, incremental=3, global_=29)

    # WHEN the stage maps with its defaults
    model, mapper = map_with_fallback(Path("db"), Path("images"), Path("work"), SfmConfig(), total=29)

    # THEN it tried incremental first, then global, and kept the global model
    assert called == ["incremental", "global"]
    assert (model.num_reg_images(), mapper) == (29, "global")


@pytest.mark.parametrize(
    ("config", "incremental", "expected_calls"),
    [
        (SfmConfig(), 20, ["incremental"]),  # enough photos registered: no second mapping
        (SfmConfig(fallback_to_global=False), 3, ["incremental"]),  # asked for incremental only
        (SfmConfig(mapper="global"), 3, ["global"]),  # global was the choice already
    ],
)
def test_the_global_mapper_runs_only_when_needed_and_allowed(
    monkeypatch: pytest.MonkeyPatch, config: SfmConfig, incremental: int, expected_calls: list[str]
) -> None:
    # GIVEN scripted mappers
    called = _mappers(monkeypatch, incremental=incremental, global_=3)

    # WHEN mapping 29 photos
    _, mapper = map_with_fallback(Path("db"), Path("images"), Path("work"), config, total=29)

    # THEN only the expected mappers ran
    assert called == expected_calls and mapper == config.mapper


def test_a_global_model_that_is_no_better_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN both mappers stalling, global worse
    _mappers(monkeypatch, incremental=5, global_=4)

    # THEN the incremental model stays, and the stage reports too few registered photos from it
    model, mapper = map_with_fallback(Path("db"), Path("images"), Path("work"), SfmConfig(), total=29)
    assert (model.num_reg_images(), mapper) == (5, "incremental")


@pytest.mark.parametrize(("photos", "growth"), [(100, 1.1), (101, 1.4), (512, 1.4)])
def test_a_large_capture_adjusts_the_whole_model_less_often(monkeypatch: pytest.MonkeyPatch, photos, growth) -> None:
    # GIVEN pycolmap's incremental mapper, watched
    import pycolmap

    seen: list[tuple[float, float]] = []

    def fake_incremental_mapping(database, images_dir, models_dir, options):  # noqa: ANN001, ANN202
        seen.append((options.ba_global_frames_ratio, options.ba_global_points_ratio))
        return {0: FakeModel(photos)}

    monkeypatch.setattr(pycolmap, "incremental_mapping", fake_incremental_mapping)
    # WHEN a capture of that many photos is mapped with the defaults
    map_with_fallback(Path("db"), Path("images"), Path("work"), SfmConfig(num_threads=1), total=photos)
    # THEN global bundle adjustment waits for the model to grow by COLMAP's 10 % up to the exhaustive limit, and by
    # its video setting's 40 % beyond it (measured: 1.5-1.9x faster mapping, the same accuracy)
    assert seen == [pytest.approx((growth, growth))]


@pytest.mark.slow
def test_the_global_mapper_holds_the_focal_length_that_exif_gave(sample_scene, tmp_path: Path) -> None:
    # GIVEN the sample scene's photos, whose EXIF gives their focal length, mapped by the global mapper
    import pycolmap

    from spaceport.sfm.stage import run_sfm

    run_sfm(sample_scene.images_dir, tmp_path / "output", tmp_path / "work", SfmConfig(mapper="global"))

    # WHEN the model's camera is compared with the focal length COLMAP read from EXIF into its database
    database = pycolmap.Database.open(str(tmp_path / "work" / "database.db"))
    prior = database.read_all_cameras()[0].focal_length
    database.close()
    model = pycolmap.Reconstruction(tmp_path / "output" / "sparse" / "0")

    # THEN bundle adjustment left it as EXIF said (a forward walk let it drift 29 % when it was free)
    assert stage.focal_from_exif(tmp_path / "work" / "database.db")
    assert next(iter(model.cameras.values())).focal_length_x == pytest.approx(prior, rel=1e-9)
