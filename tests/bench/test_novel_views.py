"""Fitting the generator's world into the SfM model's frame, for scoring the novel-view sweep."""

from __future__ import annotations

import numpy as np
from benchmarks.novel_views import similarity_from_poses


def _rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def test_a_similarity_is_recovered_from_cameras_along_a_nearly_straight_path() -> None:
    # GIVEN cameras along a nearly straight walk (their centres alone barely fix the rotation about it), and the
    # same cameras in a frame scaled, turned about that very line and moved, with a little noise
    rng = np.random.default_rng(0)
    centres = np.stack([np.linspace(-6, 6, 30), rng.normal(scale=0.01, size=30), rng.normal(scale=0.01, size=30)], 1)
    orientations = [_rotation_about(rng.normal(size=3), 0.3) for _ in range(30)]
    turn = _rotation_about(np.array([1.0, 0.0, 0.1]), 0.4)
    model_centres = 0.48 * centres @ turn.T + np.array([1.0, -2.0, 0.5]) + rng.normal(scale=1e-4, size=(30, 3))
    model_orientations = [orientation @ turn.T for orientation in orientations]

    # WHEN the similarity is fitted
    similarity = similarity_from_poses(orientations, centres, model_orientations, model_centres)

    # THEN it recovers scale, rotation and offset, and maps the centres onto the model's
    assert abs(similarity.scale - 0.48) < 1e-4
    assert np.allclose(similarity.rotation, turn, atol=1e-6)
    assert np.abs(similarity.apply(centres) - model_centres).max() < 1e-3
