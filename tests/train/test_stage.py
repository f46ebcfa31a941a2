"""The train stage end to end on the synthetic scene: training works, outputs are complete, failures explain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spaceport.cli import main
from spaceport.contract import verify_manifest
from spaceport.gaussians import read_ply
from spaceport.train import trainer
from spaceport.train.losses import psnr
from spaceport.train.stage import TrainPaths, train_stage

# Short enough for CI on two cores, long enough to densify, prune and train well past the start.
# The synthetic scene is see-through over black (unlike a photo), so it trains over its own black background.
SHORT_RUN = {"preset": "fast", "device": "cpu", "iterations": "240", "densify_from": "30", "densify_until": "120",
             "densify_every": "20", "max_gaussians": "800", "sh_degree_interval": "60", "checkpoint_every": "0",
             "log_every": "20", "background_mode": "fixed"}  # fmt: skip


def _paths(tmp_path: Path, sfm: Path) -> TrainPaths:
    return TrainPaths(sfm, tmp_path / "model", tmp_path / "checkpoints", tmp_path / "output" / "failure",
                      tmp_path / "input" / "config" / "hyperparameters.json")  # fmt: skip


@pytest.mark.slow
def test_short_cpu_training_beats_the_start_and_writes_a_complete_model(
    tmp_path: Path, synthetic_sfm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the synthetic scene, a short CPU run, and a spy on the views each training step sees
    stepped: list[str] = []
    original_step = trainer.train_step

    def spy(state, view, ctx):  # noqa: ANN001, ANN202
        stepped.append(view.name)
        return original_step(state, view, ctx)

    monkeypatch.setattr(trainer, "train_step", spy)
    progress: list[dict] = []

    # WHEN the stage runs
    manifest = train_stage(_paths(tmp_path, synthetic_sfm), SHORT_RUN, progress=progress.append)

    # THEN held-out PSNR rose by more than 5 dB over the initialisation, on views never trained on
    assert manifest["psnr_test"] > manifest["psnr_initial"] + 5.0, manifest
    assert manifest["test_views"] == ["view_000.png", "view_008.png"]
    assert len(stepped) == 240 and not set(stepped) & set(manifest["test_views"])
    assert manifest["train_views"] == 14 and len(set(stepped)) == 14
    # densification grew the set within the cap, and SH reached degree 1 (the fast preset's maximum)
    assert 200 < manifest["num_gaussians"] <= 800 and manifest["sh_degree"] == 1
    assert manifest["iterations"] == 240 and manifest["device"] == "cpu" and manifest["background"] == [0, 0, 0]
    assert set(manifest["seconds"]) >= {"load", "train", "evaluate", "export"}
    # progress was reported every 20 iterations with the figures of the log line
    assert [p["iteration"] for p in progress] == list(range(20, 241, 20))
    assert progress[-1]["gaussians"] == manifest["num_gaussians"]
    # the model folder is complete and the PLY is a standard 3DGS file with SH degree 1
    model_dir = tmp_path / "model"
    assert verify_manifest(model_dir) is not None and "scene.ply" in manifest["files"]
    cloud = read_ply(model_dir / "scene.ply")
    assert len(cloud) == manifest["num_gaussians"] and cloud.sh_degree == 1
    header = (model_dir / "scene.ply").read_bytes().split(b"end_header")[0].decode()
    for name in ["x", "nx", "f_dc_0", "f_rest_8", "opacity", "scale_2", "rot_3"]:
        assert f"property float {name}\n" in header


@pytest.mark.slow
def test_resume_continues_from_the_newest_checkpoint(tmp_path: Path, synthetic_sfm: Path) -> None:
    # GIVEN a run of 20 iterations that checkpoints every 10 (a spot instance reclaimed at its end)
    paths = _paths(tmp_path, synthetic_sfm)
    settings = SHORT_RUN | {"iterations": "20", "checkpoint_every": "10", "densify_from": "5", "densify_every": "5"}
    first = train_stage(paths, settings)
    checkpoints = sorted(p.name for p in paths.checkpoint_dir.iterdir())

    # WHEN the stage starts again with 30 iterations
    steps: list[int] = []
    resumed = train_stage(paths, settings | {"iterations": "30", "log_every": "1"},
                          progress=lambda p: steps.append(int(p["iteration"])))  # fmt: skip

    # THEN it continued at 21 (not 1) with the Gaussians it had, and kept only the newest two checkpoints
    assert checkpoints == ["step-0000010.pt", "step-0000020.pt"]
    assert steps == list(range(21, 31))
    assert resumed["iterations"] == 30 and resumed["psnr_initial"] == first["psnr_initial"]
    assert sorted(p.name for p in paths.checkpoint_dir.iterdir()) == ["step-0000020.pt", "step-0000030.pt"]


class Reclaimed(Exception):
    """Stands for the spot instance going away mid-run."""


@pytest.mark.parametrize("learned", [{}, {"background_mode": "sky", "appearance": "true"}])
def test_resume_matches_an_uninterrupted_run(tmp_path: Path, synthetic_sfm: Path, learned: dict) -> None:
    # GIVEN a 12-iteration run straight through, and the same run reclaimed after its checkpoint at 6 (with and
    # without the learned sky and photo transforms, which the checkpoint must carry too)
    settings = SHORT_RUN | {"iterations": "12", "checkpoint_every": "6", "densify_from": "4", "densify_every": "4",
                            "log_every": "1"} | learned  # fmt: skip
    straight = train_stage(_paths(tmp_path / "a", synthetic_sfm), settings)
    paths = _paths(tmp_path / "b", synthetic_sfm)

    def reclaim_at_8(figures: dict) -> None:
        if figures["iteration"] == 8:
            raise Reclaimed

    with pytest.raises(Reclaimed):
        train_stage(paths, settings, progress=reclaim_at_8)

    # WHEN the stage starts again
    resumed = train_stage(paths, settings)

    # THEN both end with the same Gaussians (optimiser state, statistics and random streams all restored), the
    # sky shell's colours included
    a, b = read_ply(tmp_path / "a" / "model" / "scene.ply"), read_ply(paths.model_dir / "scene.ply")
    shell = resumed["sky_shell"] or {"first": resumed["num_gaussians"], "gaussians": 0}
    assert (
        len(a) == len(b) == shell["first"] + shell["gaussians"]
        and straight["num_gaussians"] == resumed["num_gaussians"]
    )
    assert abs(a.means - b.means).max() < 1e-4 and abs(a.sh0 - b.sh0).max() < 1e-4
    assert abs(a.opacities - b.opacities).max() < 1e-4


def test_missing_model_writes_a_specific_failure_reason(tmp_path: Path) -> None:
    # GIVEN a SageMaker layout whose sfm channel has images but no sparse/0
    (tmp_path / "input" / "data" / "sfm" / "images").mkdir(parents=True)
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({"preset": "fast", "device": "cpu"}))

    # WHEN the container command runs
    code = main(["train", "--ml-root", str(tmp_path)])

    # THEN it fails, the reason names the missing model, and no manifest claims completion
    assert code == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("train: no COLMAP model in ") and "sparse/0" in reason
    assert not (tmp_path / "model" / "manifest.json").exists()


def test_explicit_flags_override_the_hyperparameters_file(tmp_path: Path) -> None:
    # GIVEN a hyperparameters file asking for an unknown preset, overridden on the command line
    config = tmp_path / "hp.json"
    config.write_text(json.dumps({"preset": "nonsense"}))

    # WHEN run with --preset fast against an empty sfm folder
    code = main(["train", "--ml-root", str(tmp_path), "--hyperparameters", str(config), "--preset", "fast",
                 "--device", "cpu", "--sfm", str(tmp_path / "nowhere")])  # fmt: skip

    # THEN the preset was accepted (the failure is about the model, not the preset)
    assert code == 1
    assert "no COLMAP model" in (tmp_path / "output" / "failure").read_text()


@pytest.mark.slow
def test_the_learned_sky_is_baked_into_the_exported_scene(tmp_path: Path) -> None:
    # GIVEN the synthetic scene under a blue sky (the photos are blue wherever no Gaussian covers them)
    from spaceport.local.views import render_cloud_view
    from spaceport.train.data import load_scene

    from .synthetic import SyntheticSpec, make_synthetic_sfm

    sfm = make_synthetic_sfm(tmp_path / "sfm", SyntheticSpec(background=(0.35, 0.55, 0.9)))
    settings = SHORT_RUN | {"background_mode": "sky", "sky_sh_degree": "1"}

    # WHEN the stage trains with the sky model and exports
    manifest = train_stage(_paths(tmp_path, sfm), settings)

    # THEN the PLY holds the trained Gaussians then the shell, far outside, and rendered over black from the
    # held-out cameras it scores as the model did (the sky is in the file, not in a viewer's background)
    cloud = read_ply(tmp_path / "model" / "scene.ply")
    shell = manifest["sky_shell"]
    assert shell["first"] + shell["beyond_shell_dropped"] == manifest["num_gaussians"]
    assert len(cloud) == shell["first"] + shell["gaussians"]
    centre = np.array(shell["centre"])
    assert np.linalg.norm(cloud.means[: shell["first"]] - centre, axis=1).max() < 0.9 * shell["radius"]
    assert np.allclose(np.linalg.norm(cloud.means[shell["first"] :] - centre, axis=1), shell["radius"], rtol=1e-4)
    # AND the shell says what share of its directions the photos saw (a ring of level views: neither the zenith
    # nor the nadir, nor what the scene hides)
    assert 0.1 < shell["seen_share"] < 0.6, shell
    views = load_scene(sfm, 0, "cpu").test_views
    scores = [psnr(torch.from_numpy(render_cloud_view(tmp_path / "model" / "scene.ply", view, (0, 0, 0)) / 255.0),
                   view.image) for view in views]  # fmt: skip
    assert abs(sum(scores) / len(scores) - manifest["psnr_test"]) < 0.5
    assert manifest["psnr_test"] > manifest["psnr_initial"] + 5.0
