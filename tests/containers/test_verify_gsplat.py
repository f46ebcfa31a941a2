"""The train image's build check of gsplat's kernels, on fake gsplat packages (no GPU, no nvcc, no gsplat)."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "containers" / "train" / "verify_gsplat.py"
BACKEND = "from gsplat import csrc as _C\n"

# A real extension module named gsplat.csrc. Built with LIBCUDA_GATE, it loads only once a libcuda.so.1 is on
# LD_LIBRARY_PATH, as a loader that insisted on the driver would.
EXTENSION_SOURCE = r"""
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "csrc", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_csrc(void) {
#ifdef LIBCUDA_GATE
    const char *paths = getenv("LD_LIBRARY_PATH");
    char candidate[4096];
    int found = 0;
    if (paths) {
        char *copy = strdup(paths), *entry = strtok(copy, ":");
        for (; entry && !found; entry = strtok(NULL, ":")) {
            snprintf(candidate, sizeof candidate, "%s/libcuda.so.1", entry);
            found = access(candidate, F_OK) == 0;
        }
        free(copy);
    }
    if (!found) {
        PyErr_SetString(PyExc_ImportError, "libcuda.so.1: cannot open shared object file: No such file or directory");
        return NULL;
    }
#endif
    return PyModule_Create(&module);
}
"""


def fake_gsplat(root: Path, compiled: str | None = None, backend: str = BACKEND) -> Path:
    """A gsplat package under ``root``: ``compiled`` names its csrc file (None: none, as in PyPI's wheel)."""
    package = root / "gsplat"
    (package / "cuda").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cuda" / "__init__.py").write_text("")
    (package / "cuda" / "_backend.py").write_text(backend)
    if compiled is not None:
        (package / compiled).write_bytes(b"")
    return package


def fake_cuobjdump(folder: Path, *archs: str) -> Path:
    """A cuobjdump that lists cubins for ``archs`` the way CUDA's does."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"echo 'ELF file    {i}: csrc.{i}.{arch}.cubin'\n" for i, arch in enumerate(archs, 1))
    tool = folder / "cuobjdump"
    tool.write_text(f"#!/bin/sh\n{lines}")
    tool.chmod(0o755)
    return folder


def build_extension(package: Path, *defines: str) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("needs a C compiler to build a stand-in extension module")
    source = package.parent / "csrc.c"
    source.write_text(EXTENSION_SOURCE)
    include = f"-I{sysconfig.get_paths()['include']}"
    subprocess.run([compiler, "-shared", "-fPIC", *defines, include, str(source), "-o", str(package / "csrc.so")],
                   check=True)  # fmt: skip


def verify(root: Path, tools: Path, arch_list: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(root), "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run([sys.executable, str(SCRIPT), "--arch-list", arch_list], capture_output=True, text=True,
                          env=environment, cwd=root)  # fmt: skip


def test_arch_list_becomes_the_machine_code_to_look_for() -> None:
    # GIVEN the script's parser of TORCH_CUDA_ARCH_LIST
    script = runpy.run_path(str(SCRIPT))

    # WHEN the image's list and a few other spellings are parsed
    # THEN each names its sm_ target, +PTX adds none, and a bad or empty list stops the build
    assert script["required_archs"]("7.5;8.0;8.6;8.9;9.0") == ["sm_75", "sm_80", "sm_86", "sm_89", "sm_90"]
    assert script["required_archs"](" 9.0+PTX 9.0a ") == ["sm_90", "sm_90a"]
    for bad in ("", "sm_90", "8"):
        with pytest.raises(script["CheckFailedError"]):
            script["required_archs"](bad)


def test_pypi_wheel_without_kernels_fails_the_build(tmp_path: Path) -> None:
    # GIVEN gsplat as PyPI's py3-none-any wheel installs it: no compiled module, only the JIT backend
    fake_gsplat(tmp_path)

    # WHEN the image's check runs
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_90"), "9.0")

    # THEN the build stops, and says how to install gsplat instead
    assert result.returncode == 1
    assert "gsplat.csrc is missing" in result.stderr and "--no-binary gsplat" in result.stderr


def test_a_python_module_in_place_of_the_kernels_fails_the_build(tmp_path: Path) -> None:
    # GIVEN a gsplat whose csrc is plain Python
    fake_gsplat(tmp_path, compiled="csrc.py")

    # WHEN the image's check runs
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_90"), "9.0")

    # THEN the build stops: that is no compiled extension
    assert result.returncode == 1 and "not a compiled extension module" in result.stderr


def test_missing_architecture_fails_the_build(tmp_path: Path) -> None:
    # GIVEN a compiled module with machine code for sm_80 only
    fake_gsplat(tmp_path, compiled="csrc.so")

    # WHEN the image asks for sm_75 and sm_80
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_80"), "7.5;8.0")

    # THEN the build stops and names the missing architecture
    assert result.returncode == 1 and "no machine code for sm_75 (it has sm_80)" in result.stderr


def test_a_module_that_does_not_load_fails_the_build(tmp_path: Path) -> None:
    # GIVEN a compiled module with every architecture listed, but not a loadable library
    fake_gsplat(tmp_path, compiled="csrc.so")

    # WHEN the image's check runs
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_86", "sm_90"), "8.6;9.0")

    # THEN the build stops at the load, with the loader's reason
    assert result.returncode == 1 and "gsplat.csrc does not load" in result.stderr


def test_compiled_kernels_that_load_and_are_used_pass(tmp_path: Path) -> None:
    # GIVEN a loadable compiled module with the wanted machine code, which gsplat's backend imports
    build_extension(fake_gsplat(tmp_path))

    # WHEN the image's check runs
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_90"), "9.0")

    # THEN it passes, having loaded the module beside torch
    assert result.returncode == 0, result.stderr
    assert "machine code for: sm_90" in result.stdout and "no job will JIT-compile them" in result.stdout


def test_a_backend_that_would_not_use_the_kernels_fails_the_build(tmp_path: Path) -> None:
    # GIVEN a loadable compiled module that gsplat's backend ignores (as its JIT fallback would)
    build_extension(fake_gsplat(tmp_path, backend="_C = None\n"))

    # WHEN the image's check runs
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_90"), "9.0")

    # THEN the build stops
    assert result.returncode == 1 and "gsplat's backend uses None" in result.stderr


def test_a_loader_that_asks_for_the_driver_is_given_the_stub(tmp_path: Path) -> None:
    # GIVEN a module that loads only where libcuda.so.1 is found, as in a docker build without the NVIDIA runtime,
    # and a CUDA toolkit with its stub driver
    build_extension(fake_gsplat(tmp_path), "-DLIBCUDA_GATE")
    stubs = tmp_path / "cuda" / "lib64" / "stubs"
    stubs.mkdir(parents=True)
    (stubs / "libcuda.so").write_bytes(b"")

    # WHEN the image's check runs
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_90"), "9.0", CUDA_HOME=str(tmp_path / "cuda"))

    # THEN the load is retried against the stub and passes; without the stub it fails
    assert result.returncode == 0, result.stderr
    shutil.rmtree(tmp_path / "cuda")
    result = verify(tmp_path, fake_cuobjdump(tmp_path / "bin", "sm_90"), "9.0", CUDA_HOME=str(tmp_path / "cuda"))
    assert result.returncode == 1 and "libcuda.so.1" in result.stderr
