"""Fail the train image's build unless gsplat's CUDA kernels are compiled in and load without the JIT fallback.

PyPI's gsplat wheel is py3-none-any with no kernels in it: gsplat then compiles them at the first kernel call
of every job, inside billed GPU time, and says nothing at ``import gsplat``. This checks, after gsplat was
installed from its sdist, what a ``docker build`` can check without a GPU:

1. the compiled module ``gsplat.csrc`` is a file inside the installed package (the JIT's module is named
   ``gsplat_cuda`` and lives in torch's extensions cache instead);
2. it holds machine code for every architecture in ``TORCH_CUDA_ARCH_LIST`` (``cuobjdump --list-elf``),
   so a T4 job cannot fail with "no kernel image is available for execution on the device";
3. it loads next to this torch: every symbol resolves. Loading needs no GPU and no driver, as ``import torch``
   of a CUDA build needs none (cudart opens the driver at its first call); should a loader still ask for
   ``libcuda.so.1``, which the NVIDIA container runtime mounts only when a job starts, the load is retried
   against the toolkit's stub driver;
4. ``gsplat.cuda._backend`` picks that module, so no job compiles anything.

Running a kernel needs the GPU itself: ``make gpu-check`` does that on a GPU machine.

Usage: ``python verify_gsplat.py [--torch-version 2.13.0]``; exits 1 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXTENSION = "gsplat.csrc"


class CheckFailedError(Exception):
    """One of the checks failed; the message says which and why."""


def required_archs(arch_list: str) -> list[str]:
    """``"7.5;8.0 9.0+PTX"`` -> ``["sm_75", "sm_80", "sm_90"]``: the machine code TORCH_CUDA_ARCH_LIST asks for."""
    archs = []
    for entry in re.split(r"[;\s]+", arch_list.strip()):
        match = re.fullmatch(r"(\d+)\.(\d+)(a?)(\+PTX)?", entry)
        if entry and match is None:
            raise CheckFailedError(f"TORCH_CUDA_ARCH_LIST entry {entry!r} is not like 8.6 or 9.0+PTX")
        if match:
            archs.append(f"sm_{match[1]}{match[2]}{match[3]}")
    if not archs:
        raise CheckFailedError("TORCH_CUDA_ARCH_LIST is empty: without a GPU, torch cannot tell what to build for")
    return archs


def extension_file() -> Path:
    """The compiled module's file, which must lie inside the installed gsplat package."""
    spec = importlib.util.find_spec(EXTENSION)
    if spec is None or spec.origin is None:
        raise CheckFailedError(
            f"{EXTENSION} is missing: gsplat was installed without its CUDA kernels (PyPI's py3-none-any wheel, or "
            "BUILD_NO_CUDA=1); install it with `pip install --no-binary gsplat --no-build-isolation`"
        )
    origin = Path(spec.origin)
    if not origin.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        raise CheckFailedError(f"{EXTENSION} is {origin}, not a compiled extension module")
    # find_spec imported the package itself on the way: its folder is where setup.py put the module.
    package = Path(sys.modules["gsplat"].__file__ or "").parent
    if origin.parent != package:
        raise CheckFailedError(f"{EXTENSION} is {origin}, outside the installed package {package}")
    return origin


def cuobjdump() -> str:
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    for candidate in (shutil.which("cuobjdump"), os.path.join(cuda_home, "bin", "cuobjdump")):
        if candidate and os.path.isfile(candidate):
            return candidate
    raise CheckFailedError("cuobjdump is not on PATH nor in $CUDA_HOME/bin: cannot list the compiled kernels")


def embedded_archs(library: Path) -> set[str]:
    """The architectures the library carries machine code (cubins) for, e.g. ``{"sm_80", "sm_90"}``."""
    listing = subprocess.run([cuobjdump(), "--list-elf", str(library)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise CheckFailedError(f"cuobjdump --list-elf {library} failed: {listing.stderr.strip()}")
    return set(re.findall(r"\bsm_\d+a?\b", listing.stdout))


def check_archs(library: Path, arch_list: str) -> list[str]:
    wanted = required_archs(arch_list)
    found = embedded_archs(library)
    missing = [arch for arch in wanted if arch not in found]
    if missing:
        raise CheckFailedError(
            f"{library.name} has no machine code for {', '.join(missing)} (it has {', '.join(sorted(found)) or 'none'})"
        )
    return wanted


# Run in a fresh interpreter: a module that failed to load cannot be loaded again in the same one.
LOAD_PROBE = """
import torch
from torch.utils.cpp_extension import _get_build_directory
import gsplat.csrc as compiled
import gsplat.cuda._backend as backend
assert backend._C is compiled, f"gsplat's backend uses {backend._C!r}, not the compiled {compiled!r}"
jit_dir = _get_build_directory("gsplat_cuda", verbose=False)
import os
assert not os.listdir(jit_dir), f"gsplat JIT-compiled into {jit_dir}"
print("loaded", compiled.__file__, "torch", torch.__version__, "CUDA", torch.version.cuda)
"""


def _stub_driver_dir() -> Path | None:
    """A folder holding ``libcuda.so.1`` -> the toolkit's stub driver, for loaders that insist on the driver."""
    cuda_home = Path(os.environ.get("CUDA_HOME") or "/usr/local/cuda")
    stub = next((path for path in cuda_home.glob("lib*/stubs/libcuda.so") if path.is_file()), None)
    if stub is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="libcuda-stub-"))
    (folder / "libcuda.so.1").symlink_to(stub)
    return folder


def check_load() -> str:
    """Load the compiled module and gsplat's backend in a fresh interpreter; return what it printed."""
    # A throwaway extensions cache: anything JIT-built would land there, and the probe fails if it is not empty.
    with tempfile.TemporaryDirectory(prefix="torch-extensions-") as cache:
        environment = {**os.environ, "TORCH_EXTENSIONS_DIR": cache}
        probe = subprocess.run([sys.executable, "-c", LOAD_PROBE], capture_output=True, text=True, env=environment)
        if probe.returncode != 0 and "libcuda.so" in probe.stderr:
            stub_dir = _stub_driver_dir()
            if stub_dir is not None:
                library_path = ":".join(filter(None, [str(stub_dir), os.environ.get("LD_LIBRARY_PATH")]))
                environment["LD_LIBRARY_PATH"] = library_path
                probe = subprocess.run([sys.executable, "-c", LOAD_PROBE], capture_output=True, text=True,
                                       env=environment)  # fmt: skip
                shutil.rmtree(stub_dir, ignore_errors=True)
    if probe.returncode != 0:
        raise CheckFailedError(f"{EXTENSION} does not load:\n{probe.stderr.strip()}")
    return probe.stdout.strip()


def check_torch(expected_version: str) -> str:
    import torch

    if torch.__version__.split("+")[0] != expected_version:
        raise CheckFailedError(f"torch is {torch.__version__}, not {expected_version} (pyproject.toml's pin)")
    if torch.version.cuda is None:
        raise CheckFailedError(f"torch {torch.__version__} is a CPU build: gsplat needs a CUDA build")
    return f"torch {torch.__version__} (CUDA {torch.version.cuda})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-version", help="fail unless torch is this version (e.g. 2.13.0) and a CUDA build")
    parser.add_argument("--arch-list", default=os.environ.get("TORCH_CUDA_ARCH_LIST", ""),
                        help="architectures that must be compiled in (default: $TORCH_CUDA_ARCH_LIST)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.torch_version:
            print(check_torch(args.torch_version))
        library = extension_file()
        print(f"{EXTENSION}: {library}")
        print(f"machine code for: {', '.join(check_archs(library, args.arch_list))}")
        print(check_load())
    except CheckFailedError as error:
        print(f"verify_gsplat: {error}", file=sys.stderr)
        return 1
    print("gsplat's compiled kernels are in place; no job will JIT-compile them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
