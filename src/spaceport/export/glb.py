"""The binary glTF container (GLB, glTF 2.0 section 4.4): a JSON chunk and one BIN chunk, and typed accessors.

:class:`GlbBuilder` collects buffer views into the single BIN chunk (each 4-byte aligned, as accessors of float
components require) and writes the document; :func:`read_glb` and :func:`accessor_array` read one back.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GLB_MAGIC = 0x46546C67  # "glTF"
GLB_VERSION = 2
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942
FLOAT, UNSIGNED_BYTE = 5126, 5121
ARRAY_BUFFER = 34962  # a view's target when it holds vertex attributes
COMPONENT_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _padded(data: bytes, filler: bytes) -> bytes:
    return data + filler * (-len(data) % 4)


@dataclass
class GlbBuilder:
    """A glTF document under construction and the bytes of its one buffer."""

    document: dict[str, Any] = field(default_factory=lambda: {"asset": {"version": "2.0"}})
    chunks: list[bytes] = field(default_factory=list)
    length: int = 0

    def add_view(self, data: bytes, target: int | None = None) -> int:
        """A buffer view holding ``data`` (``target``: what a GPU binds it as); returns its index."""
        views = self.document.setdefault("bufferViews", [])
        view = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data)}
        views.append(view | ({"target": target} if target is not None else {}))
        padded = _padded(data, b"\x00")
        self.chunks.append(padded)
        self.length += len(padded)
        return len(views) - 1

    def add_accessor(self, accessor: dict[str, Any], values: np.ndarray | None = None) -> int:
        """An accessor; with ``values`` (float32 or uint8 rows of a vertex attribute) its data goes into a view of its
        own."""
        if values is not None:
            view = self.add_view(np.ascontiguousarray(values).tobytes(), ARRAY_BUFFER)
            accessor = {"bufferView": view} | accessor
        accessors = self.document.setdefault("accessors", [])
        accessors.append(accessor)
        return len(accessors) - 1

    def to_bytes(self) -> bytes:
        document = dict(self.document)
        if self.length:
            document["buffers"] = [{"byteLength": self.length}]
        json_chunk = _padded(json.dumps(document, separators=(",", ":")).encode("utf-8"), b" ")
        chunks = [(CHUNK_JSON, json_chunk)] + ([(CHUNK_BIN, b"".join(self.chunks))] if self.length else [])
        body = b"".join(struct.pack("<II", len(data), kind) + data for kind, data in chunks)
        return struct.pack("<III", GLB_MAGIC, GLB_VERSION, 12 + len(body)) + body


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(the JSON document, the BIN chunk) of a GLB.

    Raises:
        ValueError: not a GLB of version 2, or its chunks overrun it.
    """
    if len(data) < 20:
        raise ValueError("too short for a GLB")
    magic, version, length = struct.unpack_from("<III", data)
    if magic != GLB_MAGIC or version != GLB_VERSION or length != len(data):
        raise ValueError(f"not a GLB 2.0 file (magic {magic:#x}, version {version}, length {length} of {len(data)})")
    chunks, offset = {}, 12
    while offset < length:
        size, kind = struct.unpack_from("<II", data, offset)
        if offset + 8 + size > length:
            raise ValueError("a GLB chunk overruns the file")
        chunks.setdefault(kind, data[offset + 8 : offset + 8 + size])
        offset += 8 + size
    if CHUNK_JSON not in chunks:
        raise ValueError("the GLB has no JSON chunk")
    return json.loads(chunks[CHUNK_JSON].decode("utf-8")), chunks.get(CHUNK_BIN, b"")


def view_bytes(document: dict[str, Any], binary: bytes, index: int) -> bytes:
    view = document["bufferViews"][index]
    start = view.get("byteOffset", 0)
    return binary[start : start + view["byteLength"]]


def accessor_array(document: dict[str, Any], binary: bytes, index: int) -> np.ndarray:
    """An accessor's values as (count, width) (tightly packed views only: what :class:`GlbBuilder` writes).

    Raises:
        ValueError: the accessor has no buffer view (its data lives in an extension).
    """
    accessor = document["accessors"][index]
    if "bufferView" not in accessor:
        raise ValueError(f"accessor {index} has no bufferView: its data comes from an extension")
    dtype = np.dtype(COMPONENT_DTYPES[accessor["componentType"]]).newbyteorder("<")
    width = TYPE_WIDTHS[accessor["type"]]
    data = view_bytes(document, binary, accessor["bufferView"])
    offset = accessor.get("byteOffset", 0)
    return np.frombuffer(data, dtype, accessor["count"] * width, offset).reshape(accessor["count"], width)
