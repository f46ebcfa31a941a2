"""What a job costs on SageMaker, priced from the dated table in the settings (the ``InstancePrices`` parameter).

**Billed.** Every SageMaker job of ours that ends (completed, failed or stopped; every attempt, a stale one
included) is described once by ``complete_stage``, and ``billing_entry`` turns the description into its billable
seconds and instance: a training job's ``BillableTimeInSeconds`` (with managed spot, SageMaker counts only what it
bills there), a processing job's ``ProcessingEndTime - ProcessingStartTime``, times the instance count. SageMaker
reports no billable time for a processing job and AWS does not document that interval as the billed one, so those
seconds (and a training job's wall clock, where its billable time is missing) are labelled ``estimated``. The entry
is priced when it is recorded, with the table's date beside the figure; ``summary`` adds them up per stage for the
job record's view.

**Estimated.** Before an upload, ``estimate`` predicts each stage's billable seconds from the declared photo count
and the preset on the configured instances (``StageTimes``: SfM and compression from our CPU benchmarks, training
from published GPU figures), and gives the most one attempt can bill: each stage's MaxRuntime at its price.

Only SageMaker instance time is counted: Lambda, Step Functions, DynamoDB, S3 storage and transfer are left out
(cents per job beside the GPU hours).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from spaceport.cloud.models import SAGEMAKER_STAGES, Stage


class PriceTable(BaseModel):
    """On-demand prices per instance-hour, as of a date, in one region (SageMaker's prices differ by region).

    ``problems`` names what the table's text got wrong: an entry that is not a positive number is left out (its
    instance is then unpriced, never free), a missing or malformed field is left empty. A price never stops a job.
    """

    as_of: date | None = None
    region: str = ""
    currency: str = "USD"
    source: str = ""
    per_hour: dict[str, float] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)

    @classmethod
    def parse(cls, text: str | dict[str, Any]) -> PriceTable:
        """The table from the InstancePrices parameter's JSON, keeping what is usable; never raises."""
        try:
            raw = json.loads(text) if isinstance(text, str) else text
        except ValueError as error:
            return cls(problems=[f"InstancePrices is not JSON ({error}): every instance is unpriced"])
        if not isinstance(raw, dict):
            return cls(problems=["InstancePrices is not a JSON object: every instance is unpriced"])
        problems: list[str] = []
        fields: dict[str, Any] = {}
        for name in ("region", "currency", "source"):
            if isinstance(raw.get(name), str) and raw[name]:
                fields[name] = raw[name]
            elif name != "currency" or name in raw:  # the currency may be left out: USD
                problems.append(f"InstancePrices: {name} is missing or not a text")
        fields["as_of"] = _date(raw.get("as_of"), problems)
        fields["per_hour"] = _positive_prices(raw.get("per_hour"), problems)
        return cls(**fields, problems=problems)

    def cost(self, instance_type: str, seconds: float, count: int = 1) -> float | None:
        """What ``count`` instances of ``instance_type`` cost for ``seconds``; None when the table has no price."""
        price = self.per_hour.get(instance_type)
        return None if price is None else round(price * count * seconds / 3600, 4)

    def date_text(self) -> str | None:
        return self.as_of.isoformat() if self.as_of else None

    def basis(self) -> str:
        return (f"SageMaker on-demand prices in {self.region or 'an unnamed region'} as of "
                f"{self.date_text() or 'an unknown date'} ({self.source or 'no source given'})")  # fmt: skip

    def annotate(self, view: dict[str, Any]) -> dict[str, Any]:
        """``view`` with the table's problems, so that whoever reads a cost learns why an instance is unpriced."""
        if self.problems:
            view["price_problems"] = self.problems
        return view


def _date(value: Any, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(f"InstancePrices: as_of {value!r} is not a date (YYYY-MM-DD)")
        return None


def _positive_prices(value: Any, problems: list[str]) -> dict[str, float]:
    """The usable prices of a ``per_hour`` object: finite numbers above zero (a zero would bill a job as free)."""
    if not isinstance(value, dict):
        problems.append("InstancePrices: per_hour is missing or not an object: every instance is unpriced")
        return {}
    prices = {}
    for name, price in value.items():
        number = isinstance(price, int | float) and not isinstance(price, bool)
        if number and math.isfinite(price) and price > 0:
            prices[str(name)] = float(price)
        else:
            problems.append(f"InstancePrices: {name} has {price!r}, not a positive number: left unpriced")
    return prices


# Where an entry's seconds come from when SageMaker does not report the billable time.
WALL_CLOCK_PROCESSING = "ProcessingEndTime - ProcessingStartTime (an estimate: SageMaker reports no billable time)"
WALL_CLOCK_TRAINING = "TrainingEndTime - TrainingStartTime (an estimate: no BillableTimeInSeconds was reported)"


def _seconds_between(start: Any, end: Any) -> float:
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return 0.0
    return max(0.0, (end - start).total_seconds())


def billing_entry(stage: Stage, description: dict[str, Any], prices: PriceTable) -> dict[str, Any]:
    """One ended SageMaker job's billable seconds, instance and priced cost, from its Describe*Job answer.

    A job that never started (no start time: stopped or failed while its instance was provisioned) billed nothing;
    one that completed without the times it is billed by is marked ``seconds_unknown``, never counted as free.
    """
    if "TrainingJobName" in description:
        resources = description.get("ResourceConfig", {})
        status = description.get("TrainingJobStatus")
        known = description.get("BillableTimeInSeconds") is not None
        seconds = float(description.get("BillableTimeInSeconds") or 0)
        seconds_from = "BillableTimeInSeconds"
        if not known and "TrainingStartTime" in description and "TrainingEndTime" in description:
            known = not description.get("EnableManagedSpotTraining")  # spot bills less than the wall clock
            seconds = _seconds_between(description["TrainingStartTime"], description["TrainingEndTime"])
            seconds_from = WALL_CLOCK_TRAINING
        unknown = not known and (status == "Completed" or "TrainingStartTime" in description)
        seconds = 0.0 if unknown else seconds  # a spot job's wall clock is not what it bills
    else:
        resources = description.get("ProcessingResources", {}).get("ClusterConfig", {})
        status = description.get("ProcessingJobStatus")
        seconds = _seconds_between(description.get("ProcessingStartTime"), description.get("ProcessingEndTime"))
        seconds_from = WALL_CLOCK_PROCESSING
        started = "ProcessingStartTime" in description
        unknown = (started and "ProcessingEndTime" not in description) or (status == "Completed" and not started)
    instance_type, count = str(resources.get("InstanceType", "")), int(resources.get("InstanceCount", 1))
    entry: dict[str, Any] = {
        "stage": stage.value,
        "status": status,
        "instance_type": instance_type,
        "instance_count": count,
        "billable_seconds": round(seconds, 1),
        "seconds_from": seconds_from,
        "prices_as_of": prices.date_text(),
    }
    if seconds_from != "BillableTimeInSeconds":
        entry["estimated"] = True  # not a figure SageMaker bills by: see the module's docstring
    if description.get("EnableManagedSpotTraining"):
        entry["spot"] = True
    if unknown:
        entry["seconds_unknown"] = True
    cost = prices.cost(instance_type, seconds, count)
    if cost is not None:
        entry["cost"] = cost
    return entry


def summary(billing: dict[str, dict[str, Any]], prices: PriceTable) -> dict[str, Any]:
    """The job's SageMaker cost so far, per stage and in all, from the billing entries its record holds (keyed by
    SageMaker job name: retries and stopped attempts count too). An instance the table has no price for is named,
    never counted as free."""
    stages: dict[str, dict[str, Any]] = {}
    unpriced: set[str] = set()
    unknown = sorted(name for name, entry in billing.items() if entry.get("seconds_unknown"))
    for entry in billing.values():
        stage = stages.setdefault(entry["stage"], {"jobs": 0, "billable_seconds": 0.0, "cost": 0.0, "instances": []})
        if entry.get("estimated") or ("seconds_from" not in entry and entry["stage"] != Stage.TRAIN):
            stage["estimated"] = True  # (an entry recorded before the label: a processing job's is estimated too)
        stage["jobs"] += 1
        stage["billable_seconds"] = round(stage["billable_seconds"] + entry["billable_seconds"], 1)
        if entry["instance_type"] not in stage["instances"]:
            stage["instances"].append(entry["instance_type"])
        if "cost" in entry:
            stage["cost"] = round(stage["cost"] + entry["cost"], 4)
        elif entry["billable_seconds"] > 0:
            unpriced.add(entry["instance_type"])
    dates = sorted({entry["prices_as_of"] for entry in billing.values() if entry.get("prices_as_of")})
    dates = dates or [prices.date_text()]
    view: dict[str, Any] = {
        "currency": prices.currency,
        "total": round(sum(stage["cost"] for stage in stages.values()), 2),
        "stages": stages,
        "prices_as_of": dates[-1],
        "basis": f"billable SageMaker seconds at {prices.basis()}; "
        "Lambda, Step Functions, DynamoDB and S3 not included",
    }
    if len(dates) > 1:
        view["prices_dates"] = dates  # entries priced under different tables (InstancePrices changed meanwhile)
    if unpriced:
        view["unpriced"] = f"no price in InstancePrices for {', '.join(sorted(unpriced))}: the total leaves them out"
    if unknown:
        view["seconds_unknown"] = f"SageMaker gave no billable time for {', '.join(unknown)}: the total leaves them out"
    estimated = sorted(name for name, stage in stages.items() if stage.get("estimated"))
    if estimated:
        view["estimated"] = (
            f"{', '.join(estimated)}: an estimate, from each job's end minus start time (ProcessingEndTime - "
            "ProcessingStartTime for a processing job), which AWS does not document as the time it bills"
        )
    return prices.annotate(view)


class StageTimes(BaseModel):
    """How long each stage runs, for the estimate before an upload. Every photo is taken at SfM's 1600 px (larger
    photos are scaled down to it; smaller ones cost less).

    SfM (benchmarks/RESULTS.md "Scaling: structure from motion and validation", 2 cores): extraction and matching
    at 4.0 core-seconds per 1600x1200 photo (the GPS grid at 128 photos, the costlier layout), spread over the
    instance's vCPUs; mapping at the pace measured on 2 cores, the slower of the two layouts' curves: the grid's
    182 s at 128 photos of 1600 px growing with photos^1.58, the walk's (no GPS) 61 s growing with photos^1.60
    (exponents fitted from 128 to 512 photos).
    Training: published 3DGS-family figures on one GPU (30k steps of Mip-NeRF 360 scenes in 22 to 30 minutes:
    about 0.06 s per step at up to 3 M Gaussians); not measured by us, no GPU was lent. Compression: 2.3e-4
    core-seconds per Gaussian at SH 3 (RESULTS.md "Scaling: compression", 3 M Gaussians in 338 s on 2 cores) at the
    preset's cap. Each stage adds ``startup_s`` for the image and data download SageMaker bills.
    """

    sfm_core_s_per_photo: float = 4.0
    # (seconds at 128 photos, exponent) per layout: the grid with GPS, the walk without.
    sfm_mapping_curves: tuple[tuple[float, float], ...] = ((182.0, 1.58), (61.0, 1.60))
    train_s_per_step: float = 0.06
    compress_core_s_per_gaussian: float = 2.3e-4
    startup_s: float = 120.0

    def sfm_seconds(self, photos: int, vcpus: int) -> float:
        mapping = max(seconds * (photos / 128) ** exponent for seconds, exponent in self.sfm_mapping_curves)
        return self.startup_s + self.sfm_core_s_per_photo * photos / vcpus + mapping

    def train_seconds(self, iterations: int) -> float:
        return self.startup_s + self.train_s_per_step * iterations

    def compress_seconds(self, gaussians: int, vcpus: int) -> float:
        return self.startup_s + self.compress_core_s_per_gaussian * gaussians / vcpus


# vCPUs of the processing instance sizes (the same in every family SageMaker offers for processing).
VCPUS_BY_SIZE = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "9xlarge": 36,
                 "12xlarge": 48, "16xlarge": 64, "18xlarge": 72, "24xlarge": 96}  # fmt: skip


def vcpus(instance_type: str) -> int:
    """vCPUs of an ``ml.<family>.<size>`` instance (2 when the size is unknown: the estimate errs long)."""
    return VCPUS_BY_SIZE.get(instance_type.rsplit(".", 1)[-1], 2)


def estimate(
    prices: PriceTable,
    instances: dict[Stage, str],
    max_runtime_s: dict[Stage, int],
    photos: int,
    iterations: int,
    max_gaussians: int,
    times: StageTimes | None = None,
) -> dict[str, Any]:
    """The expected SageMaker cost of a job of ``photos`` photos trained for ``iterations`` steps up to
    ``max_gaussians``, on ``instances``; the most one attempt of each stage can bill (its MaxRuntime); and a warning
    for each stage expected to run past its MaxRuntime (billed up to it, then stopped)."""
    times = times or StageTimes()
    seconds = {
        Stage.SFM: times.sfm_seconds(photos, vcpus(instances[Stage.SFM])),
        Stage.TRAIN: times.train_seconds(iterations),
        Stage.COMPRESS: times.compress_seconds(max_gaussians, vcpus(instances[Stage.COMPRESS])),
    }
    stages: dict[str, dict[str, Any]] = {}
    unpriced, warnings = [], []
    for stage in SAGEMAKER_STAGES:
        instance = instances[stage]
        expected = min(seconds[stage], max_runtime_s[stage])
        cost, at_most = prices.cost(instance, expected), prices.cost(instance, max_runtime_s[stage])
        stages[stage.value] = {"instance_type": instance, "seconds": math.ceil(seconds[stage]), "cost": cost,
                               "at_most": at_most}  # fmt: skip
        if cost is None:
            unpriced.append(instance)
        if seconds[stage] > max_runtime_s[stage]:
            warnings.append(
                f"{stage} is expected to take about {seconds[stage] / 3600:.1f} h, more than "
                f"{stage.value.title()}MaxRuntimeSeconds ({max_runtime_s[stage]} s): SageMaker would stop it there"
            )
    view: dict[str, Any] = {
        "currency": prices.currency,
        "stages": stages,
        "photos": photos,
        "prices_as_of": prices.date_text(),
        "basis": f"{prices.basis()}; expected seconds from our CPU benchmarks (SfM, compression) and published "
        "GPU training figures, for photos of 1600 px or more; 'at_most' is each stage's MaxRuntime, per attempt",
    }
    if warnings:
        view["warnings"] = warnings
    if unpriced:
        view["unpriced"] = f"no price in InstancePrices for {', '.join(sorted(set(unpriced)))}"
    else:
        view["total"] = round(sum(stage["cost"] for stage in stages.values()), 2)
        view["at_most"] = round(sum(stage["at_most"] for stage in stages.values()), 2)
    return prices.annotate(view)
