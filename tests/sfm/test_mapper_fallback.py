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


def _mappers(monkeypatch: pytest.MonkeyPatch, incremental: int, global_: int) -> list[str]:
    called: list[str] = []

    def fake_map_images(database, images_dir, models_dir, config):  # noqa: ANN001, ANN202
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
