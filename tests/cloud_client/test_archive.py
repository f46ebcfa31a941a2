"""The archive the client uploads: checked by the cloud's validator first, and the same bytes for the same photos, so
that a resumed upload continues the one S3 holds."""

from __future__ import annotations

import os

import pytest

from spaceport.cloud.client.archive import RejectedPhotosError, prepare_archive

from .conftest import noise_photos


def test_the_same_photos_make_the_same_archive_whatever_their_file_times(tmp_path):
    # GIVEN a folder of photos archived once
    photos = noise_photos(tmp_path / "photos", 4)
    first = prepare_archive(photos, tmp_path / "first")
    # WHEN the files' times change (a copy, a reboot) and the folder is archived again
    for path in photos.iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    second = prepare_archive(photos, tmp_path / "second")
    # THEN the bytes are identical, and the archive counts every photo
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (first.photo_count, first.size) == (4, second.size)


def test_photos_the_cloud_would_reject_are_refused_before_anything_is_sent(tmp_path):
    # GIVEN a folder with two photos, below the validator's minimum
    photos = noise_photos(tmp_path / "photos", 2)
    # WHEN it is prepared THEN it is refused with the validator's reason, and no archive is written
    with pytest.raises(RejectedPhotosError, match="would be rejected"):
        prepare_archive(photos, tmp_path / "archive")
    assert not (tmp_path / "archive").exists()
