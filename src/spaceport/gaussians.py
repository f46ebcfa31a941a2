"""A set of 3D Gaussians and its standard 3DGS PLY form, shared by training, compression and the viewer.

PLY layout (what SuperSplat, splat-transform and the original 3DGS code read): binary little-endian,
one ``vertex`` element with float32 properties ``x y z nx ny nz f_dc_0..2 f_rest_0..(3K-1) opacity
scale_0..2 rot_0..3``, where K = (degree+1)^2 - 1 higher-order SH coefficients per channel,
``f_rest`` is channel-major (all K red coefficients, then green, then blue), ``opacity`` is a logit,
``scale_*`` are natural logs and ``rot_*`` a quaternion (w, x, y, z), not necessarily normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# numpy is imported where it is used: the cloud's Lambdas import this module's SH counts (through the train
# stage's memory model) and must not pay for numpy, which their layer does not ship.
if TYPE_CHECKING:
    import numpy as np

SH_C0 = 0.28209479177387814


def sh_coefficients_for_degree(degree: int) -> int:
    """Higher-order SH coefficients per colour channel (the DC term excluded)."""
    return (degree + 1) ** 2 - 1


def sh_degree_for_coefficients(count: int) -> int:
    for degree in range(0, 5):
        if sh_coefficients_for_degree(degree) == count:
            return degree
    raise ValueError(f"{count} SH coefficients per channel is not (d+1)^2-1 for any degree up to 4")


@dataclass
class GaussianCloud:
    """Gaussians in world coordinates, stored the way the PLY stores them.

    Attributes:
        means: (N, 3) positions.
        sh0: (N, 3) DC colour coefficients (``f_dc``); colour = 0.5 + SH_C0 * sh0.
        shN: (N, K, 3) higher-order SH coefficients, K = (degree+1)^2 - 1 (K may be 0).
        opacities: (N,) opacity logits.
        log_scales: (N, 3) natural logs of the standard deviations along the local axes.
        quats: (N, 4) rotations as (w, x, y, z).
    """

    means: np.ndarray
    sh0: np.ndarray
    shN: np.ndarray  # noqa: N815 - the 3DGS name for the higher-order SH coefficients
    opacities: np.ndarray
    log_scales: np.ndarray
    quats: np.ndarray

    def __post_init__(self) -> None:
        import numpy as np

        count = len(self.means)
        expected = {
            "means": (count, 3),
            "sh0": (count, 3),
            "opacities": (count,),
            "log_scales": (count, 3),
            "quats": (count, 4),
        }
        for name, shape in expected.items():
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.shape != shape:
                raise ValueError(f"{name} has shape {value.shape}, expected {shape}")
            setattr(self, name, value)
        shn = np.asarray(self.shN, dtype=np.float32)
        # An empty cloud keeps its SH width (reshape cannot infer it from zero elements).
        self.shN = shn.reshape(count, shn.shape[1] if shn.ndim == 3 else -1, 3)
        sh_degree_for_coefficients(self.shN.shape[1])

    def __len__(self) -> int:
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        return sh_degree_for_coefficients(self.shN.shape[1])

    def subset(self, index: np.ndarray) -> GaussianCloud:
        return GaussianCloud(
            self.means[index],
            self.sh0[index],
            self.shN[index],
            self.opacities[index],
            self.log_scales[index],
            self.quats[index],
        )


def concatenate(clouds: list[GaussianCloud]) -> GaussianCloud:
    """One cloud holding ``clouds`` in order; they must share an SH degree."""
    import numpy as np

    degrees = {cloud.sh_degree for cloud in clouds}
    if len(degrees) != 1:
        raise ValueError(f"cannot join clouds of SH degrees {sorted(degrees)}")
    fields = ("means", "sh0", "shN", "opacities", "log_scales", "quats")
    return GaussianCloud(*(np.concatenate([getattr(cloud, name) for cloud in clouds]) for name in fields))


def _property_names(sh_rest_count: int) -> list[str]:
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(sh_rest_count * 3)]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    return names


def write_ply(cloud: GaussianCloud, path: Path) -> None:
    """Write the standard 3DGS PLY, atomically (a partial file never carries the final name)."""
    import numpy as np

    count, rest = len(cloud), cloud.shN.shape[1]
    # Channel-major f_rest: (N, K, 3) -> (N, 3, K) -> (N, 3K).
    f_rest = np.transpose(cloud.shN, (0, 2, 1)).reshape(count, rest * 3)
    columns = [cloud.means, np.zeros((count, 3), np.float32), cloud.sh0, f_rest]
    columns += [cloud.opacities[:, None], cloud.log_scales, cloud.quats]
    table = np.ascontiguousarray(np.concatenate(columns, axis=1).astype("<f4"))
    names = _property_names(rest)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {count}"]
    header += [f"property float {name}" for name in names]
    header += ["end_header"]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(table.tobytes())
    partial.replace(path)


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def read_ply(path: Path) -> GaussianCloud:
    """Read a 3DGS PLY (binary little-endian, any property order, extra properties ignored).

    Raises:
        ValueError: the file is not a binary little-endian PLY with the 3DGS properties.
    """
    import numpy as np

    data = path.read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path} is not a PLY file")
    header = data[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: only binary little-endian PLY is supported")
    count, fields, in_vertex = 0, [], False
    for line in header:
        parts = line.split()
        if parts[:1] == ["element"]:
            in_vertex = parts[1] == "vertex"
            if in_vertex:
                count = int(parts[2])
            elif count or fields:
                break
        elif parts[:1] == ["property"] and in_vertex:
            if parts[1] == "list":
                raise ValueError(f"{path}: list properties in the vertex element are not supported")
            fields.append((parts[2], "<" + _PLY_TYPES[parts[1]]))
    row = np.dtype(fields)
    body_bytes = len(data) - end - len(b"end_header\n")
    if body_bytes < count * row.itemsize:
        raise ValueError(
            f"{path} is truncated: the header announces {count} Gaussians ({count * row.itemsize} bytes), "
            f"the file holds {body_bytes} bytes after it"
        )
    table = np.frombuffer(data, dtype=row, count=count, offset=end + len(b"end_header\n"))
    names = set(table.dtype.names or ())
    required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2"]
    required += ["rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [name for name in required if name not in names]
    if missing:
        raise ValueError(f"{path}: not a 3DGS PLY, missing properties {', '.join(missing)}")
    rest_count = sum(1 for name in names if name.startswith("f_rest_"))
    if rest_count % 3:
        raise ValueError(f"{path}: {rest_count} f_rest properties is not a multiple of 3")

    def stack(keys: list[str]) -> np.ndarray:
        return np.stack([table[key].astype(np.float32) for key in keys], axis=1) if keys else np.zeros((count, 0))

    per_channel = rest_count // 3
    f_rest = stack([f"f_rest_{i}" for i in range(rest_count)]).reshape(count, 3, per_channel)
    return GaussianCloud(
        means=stack(["x", "y", "z"]),
        sh0=stack(["f_dc_0", "f_dc_1", "f_dc_2"]),
        shN=np.transpose(f_rest, (0, 2, 1)),
        opacities=table["opacity"].astype(np.float32),
        log_scales=stack(["scale_0", "scale_1", "scale_2"]),
        quats=stack(["rot_0", "rot_1", "rot_2", "rot_3"]),
    )
