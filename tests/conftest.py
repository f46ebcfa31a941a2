"""Shared fixtures. The network is blocked for every test (pytest-socket, see pyproject.toml); only
loopback is allowed, for the viewer's local server."""

from __future__ import annotations

import os

# Heavy math on two cores: one thread per process keeps parallel test processes from thrashing
# and makes float reductions repeatable.
os.environ.setdefault("OMP_NUM_THREADS", "2")
