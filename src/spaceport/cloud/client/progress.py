"""Progress for a person: a bar on a terminal (tqdm), plain lines elsewhere (a log, CI), never both."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from spaceport.cloud.client.report import STAGES, stage_live

PLAIN_STEP_PERCENT = 10


class UploadProgress:
    """A ``(sent, total)`` callback: a byte bar on a TTY, else a line at every 10 %."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._bar: Any = None
        self._next_percent = 0

    def __call__(self, sent: int, total: int) -> None:
        if self._stream.isatty():
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="upload",
                                 file=self._stream)  # fmt: skip
            self._bar.update(sent - self._bar.n)
            return
        percent = 100 * sent // max(total, 1)
        if percent >= self._next_percent:
            print(f"upload: {percent} % ({sent} of {total} bytes)", file=self._stream, flush=True)
            self._next_percent = (percent // PLAIN_STEP_PERCENT + 1) * PLAIN_STEP_PERCENT

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class StageProgress:
    """A job's ``status_callback``: a bar over the four stages on a TTY (the stage, its state, its live progress,
    where it waits), else a line each time one of those changes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._bar: Any = None
        self._last: tuple | None = None

    def __call__(self, view: dict[str, Any]) -> None:
        stages = view.get("stages", {})
        done = sum(1 for name in STAGES if stages.get(name, {}).get("status") == "SUCCEEDED")
        stage = view.get("stage") or "validate"
        record = stages.get(stage, {})
        state = f"{view['status']} {stage} ({record.get('status', 'PENDING').lower()})"
        if record.get("status") == "RUNNING" and stage_live(stage, record.get("live") or {}):
            state += f", {stage_live(stage, record['live'])}"
        waiting = view.get("waiting") or ""
        if self._stream.isatty():
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=len(STAGES), unit="stage", desc="stages", file=self._stream)
            self._bar.update(done - self._bar.n)
            self._bar.set_postfix_str(f"{state} {waiting}".strip())
            return
        key = (view["status"], stage, state, waiting)
        if key != self._last:
            self._last = key
            print(f"job {view['job_id']}: {state}{', waiting ' + waiting if waiting else ''}", file=self._stream,
                  flush=True)  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
