"""Reading S3 objects without copying them to local disk: a seekable reader over ranged GETs, and a bounded copy.

The validate Lambda reads an uploaded archive through ``S3ObjectReader`` (zipfile seeks to the central directory,
then reads each member in turn) and each photo of a folder upload through ``read_object``. Every read names the
ETag it expects (``If-Match``), so an object replaced while it is read fails the read instead of mixing two
uploads. Any failure of S3 surfaces as ``S3ReadError``, never as an ``OSError``: the validator takes an
``OSError`` from its stream for a corrupt archive, and a throttled read must not reject a good upload.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

MIB = 1 << 20
# Each ranged GET fetches this much (or up to the end of the object): a 2 GiB archive is read in ~256 requests,
# while the reader holds one block in memory.
BLOCK_BYTES = 8 * MIB


class S3ReadError(Exception):
    """S3 did not deliver what was asked (throttled, a server error, a broken connection, the object replaced).
    Not the upload's fault: the state machine retries the task."""


class S3ObjectReader(io.RawIOBase):
    """A seekable, read-only view of one S3 object version, fetched in blocks by ranged GETs."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int, etag: str, block_bytes: int = BLOCK_BYTES) -> None:
        super().__init__()
        self._s3, self._bucket, self._key, self._etag = s3, bucket, key, etag
        self._size, self._block_bytes = size, block_bytes
        self._position = 0
        self._block_start, self._block = 0, b""
        self.requests = 0
        self.bytes_fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            # As a file does: the caller (zipfile, following a corrupt offset) sees the archive as unreadable.
            raise OSError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from as many blocks as it spans; short only at the end of the object.

        ``RawIOBase.read(n)`` makes one call here, and zipfile reads a member's local header, its name and its extra
        field, and the whole central directory, each with one ``read``: a read cut at a block edge would look like
        a truncated (corrupt) archive.
        """
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._position < self._size:
            offset = self._position - self._block_start
            if not 0 <= offset < len(self._block):
                self._fetch(self._position)
                offset = 0
            count = min(len(view) - filled, len(self._block) - offset)
            view[filled : filled + count] = self._block[offset : offset + count]
            filled += count
            self._position += count
        return filled

    def _fetch(self, start: int) -> None:
        end = min(self._size, start + self._block_bytes) - 1
        data = read_object(self._s3, self._bucket, self._key, self._etag, byte_range=(start, end)).read()
        if not data:
            # The object ends before the size it was announced with: never a short read (nor an endless loop).
            raise S3ReadError(f"s3://{self._bucket}/{self._key}: no bytes at {start} of {self._size}")
        self.requests += 1
        self.bytes_fetched += len(data)
        self._block_start, self._block = start, data


def read_object(
    s3: Any, bucket: str, key: str, etag: str, byte_range: tuple[int, int] | None = None, sink: BinaryIO | None = None
) -> BinaryIO:
    """One GET of ``key`` (or of ``byte_range``, inclusive), checked against ``etag`` and against the length S3
    announced; the bytes go into ``sink`` (a new in-memory buffer when None), returned positioned at 0.

    Raises:
        S3ReadError: the GET or the transfer failed, the object changed, or fewer bytes arrived than announced.
    """
    sink = io.BytesIO() if sink is None else sink
    request: dict[str, Any] = {"Bucket": bucket, "Key": key, "IfMatch": etag}
    if byte_range is not None:
        request["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    try:
        response = s3.get_object(**request)
        expected = response["ContentLength"]
        received = 0
        for chunk in response["Body"].iter_chunks(MIB):
            sink.write(chunk)
            received += len(chunk)
    except (ClientError, BotoCoreError, OSError) as error:
        raise S3ReadError(f"s3://{bucket}/{key}: {error}") from error
    if received != expected:
        raise S3ReadError(f"s3://{bucket}/{key}: {received} of {expected} bytes arrived")
    sink.seek(0)
    return sink
