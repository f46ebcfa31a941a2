"""A Lambda must never import the heavy stage libraries."""

from __future__ import annotations

import subprocess
import sys

from .harness import FUNCTIONS, ROOT

HEAVY = ("torch", "pycolmap", "numpy", "scipy", "gsplat")


def test_handlers_do_not_import_heavy_libraries():
    # GIVEN each handler module imported in a fresh interpreter
    for name in FUNCTIONS:
        code = (
            "import importlib.util, sys;"
            f"s = importlib.util.spec_from_file_location('h', r'{ROOT / 'functions' / name / 'app.py'}');"
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m);"
            f"print(','.join(h for h in {HEAVY!r} if h in sys.modules))"
        )
        env = {"PYTHONPATH": str(ROOT / "src"), "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1"}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        # THEN it loads and none of the heavy modules came with it
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "", f"{name} imports {result.stdout.strip()}"
