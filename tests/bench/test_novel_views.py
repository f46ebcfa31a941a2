"""Fitting the generator's world into the SfM model's frame, for scoring the novel-view sweep."""

from __future__ import annotations

import numpy as np
from benchmarks.novel_views import fit_similarity


def test_a_similarity_is_recovered_from_camera_centres() -> None:
    # GIVEN camera centres and the same centres scaled, rotated and moved, with a little noise
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(30, 3)) * 5
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1.0]])
    model = 0.48 * truth @ rotation.T + np.array([1.0, -2.0, 0.5]) + rng.normal(scale=1e-4, size=(30, 3))

    # WHEN the similarity is fitted
    similarity = fit_similarity(truth, model)

    # THEN it recovers scale, rotation and translation, and maps the centres onto the model's
    assert abs(similarity.scale - 0.48) < 1e-4
    assert np.allclose(similarity.rotation, rotation, atol=1e-4)
    assert np.abs(similarity.apply(truth) - model).max() < 1e-3
