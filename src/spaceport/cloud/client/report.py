"""A job as lines a person reads: its stages with their times and figures (a running stage's live progress), where
it waits, what it cost, why it failed, where its log is and the command that retries it; and a new job's cost
estimate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

STAGES = ("validate", "sfm", "train", "compress")


def _seconds(record: dict[str, Any], now: datetime) -> str:
    if not record.get("started_at"):
        return ""
    started = datetime.fromisoformat(record["started_at"])
    ended = datetime.fromisoformat(record["ended_at"]) if record.get("ended_at") else now
    total = max(0, int((ended - started).total_seconds()))
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


def stage_figures(stage: str, figures: dict[str, Any]) -> str:
    """The few figures that say how a stage went."""
    if stage == "validate" and "images" in figures:
        return f"{figures['images']} photos"
    if stage == "sfm" and "registered_images" in figures:
        frame = (figures.get("georef") or {}).get("method", "")
        return f"{figures['registered_images']}/{figures.get('total_images', '?')} registered, " \
               f"{figures.get('points', '?')} points{', ' + frame if frame else ''}"  # fmt: skip
    if stage == "train" and "test_psnr" in figures:
        return f"held-out PSNR {figures['test_psnr']:.2f} dB, {figures.get('gaussians', '?')} Gaussians"
    if stage == "compress" and "sog_bytes" in figures:
        return f"{figures['sog_bytes'] / 1e6:.2f} MB SOG, {figures.get('gaussians', '?')} Gaussians"
    return ""


def stage_live(stage: str, live: dict[str, Any]) -> str:
    """A running stage's progress as SageMaker reports it: the training step, PSNR and Gaussians; SfM's phase."""
    if stage == "train" and "step" in live:
        total = f"/{live['total_steps']}" if live.get("total_steps") else ""
        psnr = f", PSNR {live['psnr']:.2f} dB" if live.get("psnr") is not None else ""
        gaussians = f", {live['gaussians']:,} Gaussians" if live.get("gaussians") is not None else ""
        return f"step {live['step']}{total}{psnr}{gaussians}"
    if stage == "sfm" and "phase" in live:
        if "registered" in live:
            return f"{live['phase']}: {live['registered']}/{live.get('photos', '?')} photos registered"
        return f"{live['phase']}: {live.get('photos', '?')} photos"
    return ""


def stage_line(name: str, record: dict[str, Any]) -> str:
    """What a stage has to show: its figures once it ended, its live progress while it runs."""
    if record.get("status") == "RUNNING":
        return stage_live(name, record.get("live") or {})
    return stage_figures(name, record.get("figures") or {})


def describe_job(view: dict[str, Any], command: str = "spaceport cloud", now: datetime | None = None) -> list[str]:
    """What ``status`` prints for a job view (GET /jobs/{id})."""
    now = now or datetime.now().astimezone()
    job_id, status = view["job_id"], view["status"]
    stage = f", stage {view['stage']}" if view.get("stage") and status not in ("SUCCEEDED",) else ""
    lines = [f"job {job_id}: {status}{stage} ({round(100 * float(view.get('progress', 0)))} %)"]
    for name in STAGES:
        record = view.get("stages", {}).get(name, {})
        figures = stage_line(name, record)
        lines.append(
            f"  {name:<9} {record.get('status', 'PENDING'):<10} {_seconds(record, now):>8}  {figures}".rstrip()
        )
    if view.get("waiting"):
        lines.append(f"  waiting {view['waiting']}")
    cost = view.get("cost") or {}
    if cost.get("stages"):
        note = " (sfm and compress estimated from their run times)" if cost.get("estimated") else ""
        lines.append(f"  cost so far: {cost['total']:.2f} {cost.get('currency', 'USD')}{note}")
    shown = view.get("failed_stage") if status == "FAILED" else view.get("stage") if status == "RUNNING" else None
    log = view.get("stages", {}).get(shown or "", {}).get("log")
    if log:
        lines.append(f"  {shown} log: CloudWatch Logs {log['group']}, stream {log['stream']}")
    if status == "FAILED":
        lines.append(f"  failed in {view.get('failed_stage')}: {view.get('failure_reason')}")
        lines.append(f"  retry: {command} retry {job_id}  (or --from-stage validate|sfm|train|compress)")
    if status == "CANCELLED":
        lines.append(f"  cancelled; retry: {command} retry {job_id}")
    if status == "SUCCEEDED":
        lines.append(f"  download: {command} download {job_id} --out DIR   (or: {command} view {job_id})")
    return lines


def describe_estimate(estimate: dict[str, Any]) -> list[str]:
    """What ``submit`` prints before the upload: each stage's expected time and cost on its instance."""
    if "stages" not in estimate:
        return [f"cost estimate: {estimate.get('missing', 'none')}"]
    currency = estimate.get("currency", "USD")
    lines = [f"expected SageMaker cost for {estimate.get('photos')} photos (prices of {estimate.get('prices_as_of')}):"]
    for stage, figures in estimate["stages"].items():
        cost = f"{figures['cost']:.2f} {currency}" if figures.get("cost") is not None else "unpriced"
        minutes = figures["seconds"] / 60
        lines.append(f"  {stage:<9} {figures['instance_type']:<16} about {minutes:5.1f} min  {cost}")
    if "total" in estimate:
        lines.append(
            f"  total about {estimate['total']:.2f} {currency}, at most {estimate['at_most']:.2f} (MaxRuntime)"
        )
    lines += [f"  warning: {warning}" for warning in estimate.get("warnings", [])]
    return lines


def job_line(view: dict[str, Any]) -> str:
    """One line of ``list``."""
    cost = view.get("cost") or {}
    total = f"{cost['total']:.2f} {cost.get('currency', 'USD')}" if cost.get("stages") else ""
    created = (view.get("created_at") or "")[:19].replace("T", " ")
    return f"{view['job_id']}  {view['status']:<15} {view.get('stage') or '':<9} {created}  {total}".rstrip()
