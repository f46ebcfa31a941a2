"""The seekable reader over ranged GETs: a read returns what was asked for, whatever the block edges."""

from __future__ import annotations

import io

import boto3
import pytest

from spaceport.cloud.s3io import S3ObjectReader, S3ReadError

from .harness import BUCKET, REGION

BLOCK = 1024
DATA = bytes(index * 7 % 251 for index in range(10 * BLOCK + 123))


@pytest.fixture
def reader(world) -> S3ObjectReader:
    s3 = boto3.client("s3", region_name=REGION)
    etag = s3.put_object(Bucket=BUCKET, Key="uploads/job-r/photos.zip", Body=DATA)["ETag"]
    return S3ObjectReader(s3, BUCKET, "uploads/job-r/photos.zip", len(DATA), etag, block_bytes=BLOCK)


@pytest.mark.parametrize("chunk", [300, BLOCK - 1, BLOCK + 1, 3 * BLOCK + 5])
def test_reads_across_block_edges_return_every_byte_asked_for(reader, chunk):
    # GIVEN an object of ten blocks and a bit, read through blocks of 1 KiB
    # WHEN it is read from the start in chunks that end away from the block edges
    sizes, received = [], b""
    while data := reader.read(chunk):
        sizes.append(len(data))
        received += data
    # THEN every read but the last returns the whole chunk asked for, and the bytes are the object's
    assert received == DATA
    assert sizes[:-1] == [chunk] * (len(sizes) - 1) and 0 < sizes[-1] <= chunk
    assert reader.tell() == len(DATA)


def test_reading_to_the_end_and_beyond(reader):
    # GIVEN the reader positioned inside the last block
    reader.seek(-50, io.SEEK_END)
    # WHEN everything that is left is read, and then more is asked for
    rest, after = reader.read(), reader.read(10)
    # THEN the rest arrives once and the end reads as empty
    assert rest == DATA[-50:] and after == b""


def test_an_object_shorter_than_announced_is_a_failed_read_not_a_short_one(world):
    # GIVEN a reader told the object is longer than it is (S3 delivering less than the size the HEAD announced)
    s3 = boto3.client("s3", region_name=REGION)
    etag = s3.put_object(Bucket=BUCKET, Key="uploads/job-s/photos.zip", Body=DATA)["ETag"]
    reader = S3ObjectReader(s3, BUCKET, "uploads/job-s/photos.zip", len(DATA) + 500, etag, block_bytes=BLOCK)
    reader.seek(len(DATA) - 10)
    # WHEN a read asks for bytes past the object's real end THEN it fails as a read S3 did not deliver, which the
    # state machine retries, instead of returning a short read that zipfile takes for a corrupt archive
    with pytest.raises(S3ReadError):
        reader.read(100)
