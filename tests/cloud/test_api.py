"""The jobs API (functions/api/app.py) invoked in-process with the events/api_*.json samples, against moto."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest

from . import harness
from .harness import BUCKET, REGION

JOB_ID = "job-0001"


def call(
    world,
    event_file: str,
    path: str | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Invoke the API handler with a copy of ``events/<event_file>``: path, JSON body and query replaced if given.

    ``body`` is JSON-encoded unless it is already a string (so a test can send text that is not JSON).
    """
    event = harness.load_event(event_file)
    if path is not None:
        event["rawPath"] = path
        event["requestContext"]["http"]["path"] = path
        if event["pathParameters"]:
            event["pathParameters"] = {"id": path.split("/")[2]}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if query is not None:
        event["queryStringParameters"] = query or None
        event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in query.items())
    response = world.handlers["api"].lambda_handler(event, harness.FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else {}


def create(world, body: Any = None, event_file: str = "api_create_job.json") -> tuple[int, dict[str, Any]]:
    return call(world, event_file, body=body)


def url_key(url: str) -> str:
    """The S3 key a presigned URL addresses, virtual-hosted or path style."""
    parsed = urlparse(url)
    path = unquote(parsed.path).lstrip("/")
    if not parsed.netloc.startswith(f"{BUCKET}."):
        assert path.startswith(f"{BUCKET}/"), url
        path = path.removeprefix(f"{BUCKET}/")
    return path


def url_query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def assert_upload_url(url: str, job_id: str) -> str:
    """A presigned URL for this job's upload prefix only, expiring within the hour; returns its key."""
    key = url_key(url)
    assert key.startswith(f"uploads/{job_id}/"), key
    assert "/" not in key.removeprefix(f"uploads/{job_id}/") and ".." not in key, key
    expires = int(url_query(url)["X-Amz-Expires"])
    assert 0 < expires <= 3600
    return key


def seed_job(
    job_id: str,
    status: str,
    *,
    finished: dict[str, dict[str, Any]] | None = None,
    failed: tuple[str, str] | None = None,
    executions: int = 1,
) -> None:
    """Write a job record through the table's own methods, as the trigger and the stage functions would.

    ``finished`` maps each stage that ended to ``{"figures": ..., "outputs": ...}`` (outputs default to what that
    stage records in production); ``failed`` is (stage, reason).
    """
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import JobStatus, Stage

    table = JobsTable(harness.TABLE)
    table.claim_for_start(job_id, {"preset": "default"}, {"kind": "zip", "key": f"uploads/{job_id}/photos.zip"})
    arn = f"arn:aws:states:{REGION}:{harness.ACCOUNT}:execution:spaceport-pipeline:{job_id}"
    table.set_execution(job_id, arn, executions)
    for stage, result in (finished or {}).items():
        table.begin_stage(job_id, Stage(stage))
        outputs = result.get("outputs") or stage_outputs(job_id, stage)
        table.end_stage(job_id, Stage(stage), "SUCCEEDED", result.get("figures", {}), outputs)
    if failed:
        table.begin_stage(job_id, Stage(failed[0]))
    if status in ("SUCCEEDED", "FAILED", "CANCELLED"):
        stage, reason = failed or (None, None)
        table.finish(job_id, JobStatus(status), failed_stage=stage, reason=reason)
    elif status == "RUNNING" and not finished and not failed:
        table.begin_stage(job_id, Stage.VALIDATE)


def uri(job_id: str, rest: str) -> str:
    return f"s3://{BUCKET}/jobs/{job_id}/{rest}"


def stage_outputs(job_id: str, stage: str) -> dict[str, str]:
    """The outputs each stage records (validate.py and pipeline.py's ``_stage_outputs``)."""
    return {
        "validate": {"images": uri(job_id, "validate/images/")},
        "sfm": {"sfm": uri(job_id, "sfm/"), "georef": uri(job_id, "sfm/georef.json")},
        "train": {"model": uri(job_id, "train/sp-x/output/model.tar.gz")},
        "compress": {
            "scene": uri(job_id, "compress/scene.sog"),
            "compress_manifest": uri(job_id, "compress/manifest.json"),
        },
    }[stage]


# ---------------------------------------------------------------- POST /jobs


def test_create_zip_job_hands_out_one_put_url_under_its_upload_prefix(world):
    # GIVEN the sample request: a 50 MiB zip, preset fast
    # WHEN it is posted
    status, body = create(world)
    # THEN a job id comes back with one presigned PUT for uploads/<id>/photos.zip, expiring as announced
    assert status == 201
    job_id = body["job_id"]
    assert body["status"] == "AWAITING_UPLOAD"
    assert body["upload"]["kind"] == "zip"
    key = assert_upload_url(body["upload"]["url"], job_id)
    assert key == body["upload"]["key"] == f"uploads/{job_id}/photos.zip"
    assert int(url_query(body["upload"]["url"])["X-Amz-Expires"]) == body["expires_in"] == 900
    # AND the job is recorded, awaiting its upload, with the chosen preset
    job = world.job(job_id)
    assert job["status"] == "AWAITING_UPLOAD"
    assert job["options"] == {"preset": "fast"}
    assert job["upload"] == {"kind": "zip", "key": f"uploads/{job_id}/photos.zip"}
    assert all(stage["status"] == "PENDING" for stage in job["stages"].values())


def test_the_presigned_put_really_uploads_the_archive(world):
    # GIVEN a created job
    _, body = create(world)
    url = body["upload"]["url"]
    # WHEN the archive is PUT to exactly the signed key (the URL's bucket, key and expiry, through moto)
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key=url_key(url), Body=b"PK\x03\x04")
    # THEN the trigger sees a job-starting key for that same job
    from spaceport.cloud.trigger import parse_upload_key

    assert parse_upload_key(url_key(url)) == (body["job_id"], {"kind": "zip", "key": url_key(url)})


def test_a_large_archive_goes_up_in_parts(world):
    # GIVEN an archive of 300 MiB (above the 100 MiB single-PUT threshold)
    size = 300 * 1024 * 1024
    # WHEN the job is created
    status, body = create(world, {"upload": "zip", "archive_bytes": size})
    # THEN it gets a multipart upload: ceil(300 / 64) = 5 part URLs and a complete URL, all on the same upload
    assert status == 201
    job_id, upload = body["job_id"], body["upload"]
    assert upload["kind"] == "zip-multipart"
    assert upload["key"] == f"uploads/{job_id}/photos.zip"
    assert [part["part_number"] for part in upload["parts"]] == [1, 2, 3, 4, 5]
    assert upload["part_bytes"] * len(upload["parts"]) >= size
    for part in upload["parts"]:
        assert assert_upload_url(part["url"], job_id) == upload["key"]
        query = url_query(part["url"])
        assert query["uploadId"] == upload["upload_id"]
        assert query["partNumber"] == str(part["part_number"])
    assert assert_upload_url(upload["complete_url"], job_id) == upload["key"]
    assert url_query(upload["complete_url"])["uploadId"] == upload["upload_id"]
    # AND S3 knows that multipart upload, for that key only
    uploads = boto3.client("s3", region_name=REGION).list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(upload["key"], upload["upload_id"])]


def test_an_archive_at_the_threshold_is_still_one_put(world):
    # GIVEN an archive of exactly 100 MiB WHEN the job is created THEN one PUT URL suffices, no multipart upload
    status, body = create(world, {"archive_bytes": 100 * 1024 * 1024})
    assert status == 201 and body["upload"]["kind"] == "zip"
    assert "Uploads" not in boto3.client("s3", region_name=REGION).list_multipart_uploads(Bucket=BUCKET)


def test_an_archive_beyond_the_part_limit_is_refused_and_leaves_no_job(world):
    # GIVEN an archive needing more than 1,000 parts of 64 MiB
    size = 1_001 * 64 * 1024 * 1024
    # WHEN the job is created
    status, body = create(world, {"archive_bytes": size})
    # THEN 400 names the size, and neither a job record nor a multipart upload is left behind
    assert status == 400
    assert str(size) in body["message"] and "too large" in body["message"]
    assert world.table.scan()["Items"] == []
    assert "Uploads" not in boto3.client("s3", region_name=REGION).list_multipart_uploads(Bucket=BUCKET)


def test_images_upload_gets_one_url_per_photo_and_job_json_last(world):
    # GIVEN the sample images request: eight photos (the template's MinImages)
    # WHEN it is posted
    status, body = create(world, event_file="api_create_job_images.json")
    # THEN each photo has its own PUT under uploads/<id>/, and job.json has one too
    assert status == 201
    job_id, upload = body["job_id"], body["upload"]
    assert upload["kind"] == "images"
    assert sorted(upload["files"]) == [f"IMG_{number:04d}.jpg" for number in range(1, 9)]
    for name, url in upload["files"].items():
        assert assert_upload_url(url, job_id) == f"uploads/{job_id}/{name}"
    assert assert_upload_url(upload["job_file"]["url"], job_id) == upload["job_file"]["key"]
    assert upload["job_file"]["key"] == f"uploads/{job_id}/job.json"
    # AND the record expects an images upload, with the deployment's default preset
    job = world.job(job_id)
    assert job["upload"] == {"kind": "images", "prefix": f"uploads/{job_id}/"}
    assert job["options"] == {"preset": "default"}


def test_every_create_gets_a_fresh_job_id(world):
    # GIVEN the same request twice WHEN both are posted THEN two distinct jobs exist
    first, second = create(world)[1]["job_id"], create(world)[1]["job_id"]
    assert first != second
    assert {world.job(first)["status"], world.job(second)["status"]} == {"AWAITING_UPLOAD"}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"preset": "ultra"}, "preset"),
        ({"preset": "fast", "instance_type": "ml.p5.48xlarge"}, "instance_type"),
        ({"upload": "tarball"}, "upload"),
        ({"iterations": 10}, "iterations"),
        ({"archive_bytes": 0}, "archive_bytes"),
        ({"upload": "images", "file_names": [f"IMG_{i:04d}.jpg" for i in range(2_001)]}, "file_names"),
        ({"upload": "images", "file_names": ["../x.jpg"]}, "../x.jpg"),
        ({"upload": "images", "file_names": ["a/../../jobs/other/scene.sog"]}, "a/../../jobs/other/scene.sog"),
        ({"upload": "images", "file_names": ["sub/IMG_1.jpg"]}, "sub/IMG_1.jpg"),
        ({"upload": "images", "file_names": [".hidden.jpg"]}, ".hidden.jpg"),
        ({"upload": "images", "file_names": ["IMG..jpg"]}, "IMG..jpg"),
        ("{not json", "line 1 column 2"),
        ([1, 2], "input"),
    ],
    ids=[
        "unknown-preset",
        "unknown-field",
        "unknown-upload-kind",
        "iterations-too-low",
        "empty-archive",
        "too-many-files",
        "parent-traversal",
        "nested-traversal",
        "subfolder",
        "leading-dot",
        "double-dot",
        "not-json",
        "not-an-object",
    ],
)
def test_bad_create_bodies_are_refused_with_the_reason(world, body, named):
    # GIVEN a body that is not a valid job request
    # WHEN it is posted
    status, response = create(world, body)
    # THEN 400 with a message naming what is wrong, and no job is recorded, no upload opened
    assert status == 400
    assert named.lower() in response["message"].lower()
    assert world.table.scan()["Items"] == []


# ---------------------------------------------------------------- GET /jobs/{id}


def test_get_a_running_job_shows_status_stage_figures_and_no_downloads(world):
    # GIVEN a job whose validation succeeded and whose sfm stage is running
    seed_job(
        JOB_ID,
        "RUNNING",
        finished={"validate": {"figures": {"images": 4}}},
    )
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import Stage

    JobsTable(harness.TABLE).begin_stage(JOB_ID, Stage.SFM)
    # WHEN the user reads it
    status, body = call(world, "api_get_job.json")
    # THEN status, stage, progress and figures are there; nothing to download yet; no internals leak
    assert status == 200
    assert body["job_id"] == JOB_ID and body["status"] == "RUNNING" and body["stage"] == "sfm"
    assert body["progress"] == 0.25
    assert body["stages"]["validate"]["figures"] == {"images": 4}
    assert body["stages"]["sfm"]["status"] == "RUNNING" and body["stages"]["sfm"]["attempts"] == 1
    assert "downloads" not in body
    for internal in ("execution_arn", "wait_token", "outputs", "upload", "list_pk", "sagemaker_job"):
        assert internal not in body


def test_get_a_failed_job_gives_the_stage_and_reason_and_no_downloads(world):
    # GIVEN a job that failed in training (its sfm output exists, but the job did not succeed)
    seed_job(
        JOB_ID,
        "FAILED",
        finished={"validate": {}},
        failed=("train", "train: loss diverged (nan)"),
    )
    # WHEN the user reads it
    status, body = call(world, "api_get_job.json")
    # THEN it says where and why it failed, and offers no download
    assert status == 200
    assert body["status"] == "FAILED"
    assert body["failed_stage"] == "train" and "loss diverged" in body["failure_reason"]
    assert "downloads" not in body


def test_get_a_succeeded_job_links_its_own_outputs_only(world):
    # GIVEN a finished job whose record also (wrongly) names another job's file as its manifest
    finished = {
        "validate": {"figures": {"images": 4}},
        "sfm": {"figures": {"points": 1200}},
        "train": {"figures": {"psnr": 24.31}},
        "compress": {
            "figures": {"bytes": 51234},
            "outputs": {
                "scene": uri(JOB_ID, "compress/scene.sog"),
                "compress_manifest": uri("job-00012", "compress/manifest.json"),
            },
        },
    }
    seed_job(JOB_ID, "SUCCEEDED", finished=finished)
    # WHEN the user reads it
    status, body = call(world, "api_get_job.json")
    # THEN every figure is reported, and only the files under jobs/<id>/ (the scene, georef.json, the sfm stage's
    # manifest) get a presigned GET
    assert status == 200
    assert body["status"] == "SUCCEEDED" and body["progress"] == 1.0
    assert body["stages"]["train"]["figures"]["psnr"] == pytest.approx(24.31)
    assert sorted(body["downloads"]) == ["georef", "scene", "sfm_manifest"]
    url = body["downloads"]["scene"]
    assert url_key(url) == f"jobs/{JOB_ID}/compress/scene.sog"
    assert 0 < int(url_query(url)["X-Amz-Expires"]) <= 3600
    assert body["expires_in"] == int(url_query(url)["X-Amz-Expires"])


def test_get_a_succeeded_job_gives_its_frame_and_links_georef_json(world):
    # GIVEN a finished job whose sfm stage georeferenced the scene from the photos' GPS (its manifest's figures)
    georef = {"method": "gps", "georeferenced": True, "metric": True, "rms_m": 0.71, "photos_used": 35,
              "photos_rejected": 1, "rejected": ["DJI_0007.JPG"],
              "origin": {"latitude": 55.7047, "longitude": 13.191, "altitude_m": 73.0}}  # fmt: skip
    finished = {stage: {"figures": {"georef": georef} if stage == "sfm" else {}}
                for stage in ("validate", "sfm", "train", "compress")}  # fmt: skip
    seed_job(JOB_ID, "SUCCEEDED", finished=finished)
    # WHEN the user reads it
    status, body = call(world, "api_get_job.json")
    # THEN the record gives the frame (method, RMS against GPS, the fix left out, the origin)
    assert status == 200
    frame = body["stages"]["sfm"]["figures"]["georef"]
    assert frame["method"] == "gps" and frame["rms_m"] == pytest.approx(0.71)
    assert frame["rejected"] == ["DJI_0007.JPG"] and frame["origin"]["latitude"] == pytest.approx(55.7047)
    # AND georef.json, beside the sfm outputs, can be downloaded
    assert url_key(body["downloads"]["georef"]) == f"jobs/{JOB_ID}/sfm/georef.json"


def test_get_a_succeeded_job_links_the_sfm_model_its_manifest_lists(world):
    # GIVEN a finished job whose sfm stage's manifest lists its COLMAP model beside the photos and georef.json
    seed_job(JOB_ID, "SUCCEEDED", finished={stage: {} for stage in ("validate", "sfm", "train", "compress")})
    model = ["sparse/0/cameras.bin", "sparse/0/images.bin", "sparse/0/points3D.bin"]
    files = {name: {"bytes": 1, "sha256": "0" * 64} for name in [*model, "images/a.jpg", "georef.json"]}
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=f"jobs/{JOB_ID}/sfm/manifest.json", Body=json.dumps({"stage": "sfm", "files": files})
    )
    # WHEN the user reads it
    status, body = call(world, "api_get_job.json")
    # THEN the manifest and each file of the model (nothing else of the sfm output) get a presigned GET
    assert status == 200
    assert url_key(body["downloads"]["sfm_manifest"]) == f"jobs/{JOB_ID}/sfm/manifest.json"
    assert sorted(body["downloads"]["sfm_model"]) == model
    assert [url_key(url) for url in body["downloads"]["sfm_model"].values()] == [
        f"jobs/{JOB_ID}/sfm/{m}" for m in model
    ]


def test_get_a_succeeded_job_links_the_exports_its_compress_manifest_lists(world):
    # GIVEN a finished job on the globe: its compress stage's manifest lists the SOG, the GLB, the SPZ and the tileset
    seed_job(JOB_ID, "SUCCEEDED", finished={stage: {} for stage in ("validate", "sfm", "train", "compress")})
    tiles = ["tiles/content/0.glb", "tiles/content/0_0.glb", "tiles/tileset.json"]
    listed = ["scene.sog", "sog/meta.json", "scene.glb", "scene.spz", *tiles]
    files = {name: {"bytes": 1, "sha256": "0" * 64} for name in listed}
    manifest = json.dumps({"stage": "compress", "files": files})
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=f"jobs/{JOB_ID}/compress/manifest.json",
                                                      Body=manifest)  # fmt: skip
    # WHEN the user reads it
    status, body = call(world, "api_get_job.json")
    # THEN the GLB and the SPZ get a presigned GET each, and so does every file of the tileset, by its path in it
    assert status == 200
    assert url_key(body["downloads"]["glb"]) == f"jobs/{JOB_ID}/compress/scene.glb"
    assert url_key(body["downloads"]["spz"]) == f"jobs/{JOB_ID}/compress/scene.spz"
    assert sorted(body["downloads"]["tiles"]) == ["content/0.glb", "content/0_0.glb", "tileset.json"]
    assert [url_key(url) for url in body["downloads"]["tiles"].values()] == [
        f"jobs/{JOB_ID}/compress/{name}" for name in tiles
    ]


def test_get_an_announced_job_before_its_upload(world):
    # GIVEN a job created through the API WHEN it is read before any upload THEN it is AWAITING_UPLOAD
    job_id = create(world)[1]["job_id"]
    status, body = call(world, "api_get_job.json", path=f"/jobs/{job_id}")
    assert status == 200
    assert body["status"] == "AWAITING_UPLOAD" and body["stage"] is None and body["progress"] == 0.0
    assert body["options"] == {"preset": "fast"}


@pytest.mark.parametrize("job_id", ["job-missing", "Job_With_Caps", "x"])
def test_get_an_unknown_job_is_404_naming_it(world, job_id):
    # GIVEN no such job (or an id that cannot be one) WHEN it is read THEN 404 says which id
    status, body = call(world, "api_get_job.json", path=f"/jobs/{job_id}")
    assert status == 404
    assert body["message"] == f"no job {job_id}"


# ---------------------------------------------------------------- GET /jobs


def test_list_pages_return_every_job_once_newest_first(world):
    # GIVEN seven jobs created through the API
    created = [create(world)[1]["job_id"] for _ in range(7)]
    # WHEN the user pages through with limit=3, passing each next token back
    seen: list[dict[str, Any]] = []
    pages = 0
    query = {"limit": "3"}
    while True:
        status, body = call(world, "api_list_jobs.json", query=query)
        assert status == 200
        assert len(body["jobs"]) <= 3
        seen.extend(body["jobs"])
        pages += 1
        assert pages <= 4, "paging does not end"
        if "next" not in body:
            break
        query = {"limit": "3", "next": body["next"]}
    # THEN every job appears exactly once, newest first, without download links
    ids = [job["job_id"] for job in seen]
    assert sorted(ids) == sorted(created)
    stamps = [job["created_at"] for job in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert all("downloads" not in job and job["status"] == "AWAITING_UPLOAD" for job in seen)


def test_list_with_the_sample_event_and_no_jobs(world):
    # GIVEN no jobs WHEN the sample list request is sent THEN an empty page with no next token
    status, body = call(world, "api_list_jobs.json")
    assert status == 200
    assert body == {"jobs": []}


def test_list_limit_is_clamped(world):
    # GIVEN three jobs WHEN asked for 0 or 1,000 per page THEN at least one and at most all come back
    for _ in range(3):
        create(world)
    assert len(call(world, "api_list_jobs.json", query={"limit": "0"})[1]["jobs"]) == 1
    assert len(call(world, "api_list_jobs.json", query={"limit": "1000"})[1]["jobs"]) == 3


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "ten"},
        {"next": "%%%not-base64"},
        {"next": "bm90IGpzb24="},  # "not json"
        {"next": "WzEsIDJd"},  # "[1, 2]": JSON, but not a key
        {"next": "eyJqb2JfaWQiOiAxfQ=="},  # {"job_id": 1}: a dict, but not this table's key
    ],
    ids=["limit-not-a-number", "next-not-base64", "next-not-json", "next-not-an-object", "next-not-a-key"],
)
def test_list_with_a_bad_limit_or_token_is_400(world, query):
    # GIVEN a job, and a malformed or tampered query WHEN the list is read THEN 400 names the parameters
    create(world)
    status, body = call(world, "api_list_jobs.json", query=query)
    assert status == 400
    assert "limit or next" in body["message"]


# ---------------------------------------------------------------- POST /jobs/{id}/retry


def failed_in_training(world, job_id: str = JOB_ID) -> None:
    seed_job(
        job_id,
        "FAILED",
        finished={
            "validate": {"figures": {"images": 4}},
            "sfm": {"figures": {"points": 1200}},
        },
        failed=("train", "train: loss diverged (nan)"),
    )


def test_retry_from_train_reruns_train_and_compress_only(world):
    # GIVEN a job that failed in training, with its sfm output recorded, and the stage images pushed
    world.push_images()
    failed_in_training(world)
    # WHEN the user retries it from train (the sample event)
    status, body = call(world, "api_retry_job.json")
    # THEN 202: the job is queued again, without its old failure
    assert status == 202
    assert body["status"] in ("QUEUED", "RUNNING")
    assert body["failed_stage"] is None and body["failure_reason"] is None
    # AND a second execution, named for the retry, starts at train
    job = world.job(JOB_ID)
    assert job["executions"] == 2
    assert job["execution_arn"].endswith(f":{JOB_ID}-retry-2")
    execution = world.sfn.describe_execution(executionArn=job["execution_arn"])
    assert json.loads(execution["input"]) == {"job_id": JOB_ID, "start_at": "train"}
    # AND when it runs, it reuses validation and sfm, and the job succeeds
    assert world.run(job["execution_arn"])["status"] == "SUCCEEDED"
    job = world.job(JOB_ID)
    assert job["status"] == "SUCCEEDED"
    assert job["stages"]["validate"]["attempts"] == 1 and job["stages"]["sfm"]["attempts"] == 1
    assert job["stages"]["train"]["attempts"] == 2
    assert "validate" not in [name for name, _ in world.invocations]
    assert not [r for _, r in world.sagemaker.requests if "-sfm-" in r.get("ProcessingJobName", "")]


def test_retry_without_a_stage_restarts_the_failed_one(world):
    # GIVEN a job that failed in training WHEN retried with no body THEN the new execution starts at train
    failed_in_training(world)
    status, _ = call(world, "api_retry_job.json", body="")
    assert status == 202
    arn = world.job(JOB_ID)["execution_arn"]
    assert json.loads(world.sfn.describe_execution(executionArn=arn)["input"])["start_at"] == "train"
    # (no images are pushed, so it fails again at train; it must end inside this test's moto account)
    world.run(arn)
    assert world.job(JOB_ID)["failed_stage"] == "train"


@pytest.mark.parametrize("state", ["RUNNING", "QUEUED", "SUCCEEDED", "AWAITING_UPLOAD"])
def test_retry_of_a_job_that_did_not_fail_is_409(world, state):
    # GIVEN a job that is still going, has succeeded, or was never uploaded
    if state == "AWAITING_UPLOAD":
        job_id = create(world)[1]["job_id"]
    else:
        job_id = JOB_ID
        seed_job(job_id, state)
    before = world.job(job_id)
    # WHEN the user asks for a retry
    status, body = call(world, "api_retry_job.json", path=f"/jobs/{job_id}/retry", body={"from_stage": "validate"})
    # THEN 409 says the job's status, and nothing changed or started
    assert status == 409
    assert state in body["message"] and "FAILED or CANCELLED" in body["message"]
    assert world.job(job_id) == before
    assert world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"] == []


def test_retry_from_a_stage_whose_inputs_are_missing_is_409(world):
    # GIVEN a job that failed at validation, so no images or sfm output exist
    seed_job(JOB_ID, "FAILED", failed=("validate", "too few images"))
    # WHEN the user asks to retry from train
    status, body = call(world, "api_retry_job.json")
    # THEN 409 names the missing output, and the job stays FAILED with no new execution
    assert status == 409
    assert "no sfm output" in body["message"]
    assert world.job(JOB_ID)["status"] == "FAILED"
    assert world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"] == []


@pytest.mark.parametrize(
    ("body", "named"),
    [({"from_stage": "render"}, "from_stage"), ({"from_stage": "train", "force": True}, "force")],
    ids=["unknown-stage", "unknown-field"],
)
def test_retry_with_a_bad_body_is_400(world, body, named):
    # GIVEN a failed job WHEN retried with an invalid body THEN 400 names the problem and nothing starts
    failed_in_training(world)
    status, response = call(world, "api_retry_job.json", body=body)
    assert status == 400
    assert named in response["message"]
    assert world.job(JOB_ID)["status"] == "FAILED"


def test_retry_of_an_unknown_job_is_404(world):
    # GIVEN no such job WHEN it is retried THEN 404 names it
    status, body = call(world, "api_retry_job.json", path="/jobs/job-missing/retry")
    assert status == 404
    assert body["message"] == "no job job-missing"


# ---------------------------------------------------------------- multipart uploads: re-sign, complete, abort


def put_part(url: str, data: bytes) -> str:
    """PUT one part to its presigned URL (moto answers it in-process), as a browser or curl would; its ETag."""
    import requests

    response = requests.put(url, data=data, timeout=10)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def complete(url: str, etags: dict[int, str]) -> None:
    """POST CompleteMultipartUpload to its presigned URL with the parts' ETags, as a browser would."""
    import requests

    parts = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in sorted(etags.items())
    )
    body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>"
    response = requests.post(url, data=body, timeout=10)
    assert response.status_code == 200 and "<Error>" not in response.text, response.text


def small_parts(monkeypatch) -> int:
    """Parts of S3's smallest size (5 MiB), so a real multipart upload fits in a test; returns the part size."""
    from spaceport.cloud import api

    monkeypatch.setattr(api, "PART_BYTES", 5 * 1024 * 1024)
    monkeypatch.setattr(api, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    return api.PART_BYTES


def resign(world, job_id: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    return call(
        world, "api_upload_parts.json", path=f"/jobs/{job_id}/upload/parts", body=body if body is not None else {}
    )


def test_a_multipart_upload_completes_through_re_signed_part_urls(world, monkeypatch):
    # GIVEN a job for an 11 MiB archive in three parts, of which only the first went up before its URLs expired
    part_bytes = small_parts(monkeypatch)
    archive = bytes(range(256)) * (11 * 1024 * 1024 // 256)
    status, body = create(world, {"upload": "zip", "archive_bytes": len(archive)})
    assert status == 201 and len(body["upload"]["parts"]) == 3
    job_id, upload = body["job_id"], body["upload"]
    etags = {1: put_part(upload["parts"][0]["url"], archive[:part_bytes])}

    # WHEN the client asks for fresh URLs for what remains
    status, fresh = resign(world, job_id)

    # THEN it gets new URLs for parts 2 and 3 only, on the same upload, and a new complete URL
    assert status == 200
    assert fresh["upload"]["upload_id"] == upload["upload_id"] and fresh["upload"]["key"] == upload["key"]
    assert [part["part_number"] for part in fresh["upload"]["parts"]] == [2, 3]
    for part in fresh["upload"]["parts"]:
        assert assert_upload_url(part["url"], job_id) == upload["key"]
        assert url_query(part["url"])["partNumber"] == str(part["part_number"])
    # AND with them the upload completes, and its arrival starts the job
    for part in fresh["upload"]["parts"]:
        start = (part["part_number"] - 1) * part_bytes
        etags[part["part_number"]] = put_part(part["url"], archive[start : start + part_bytes])
    complete(fresh["upload"]["complete_url"], etags)
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_object(Bucket=BUCKET, Key=upload["key"])["Body"].read() == archive
    assert world.deliver_upload(upload["key"])["started"]
    assert world.job(job_id)["status"] in ("QUEUED", "RUNNING")


def test_re_signing_named_parts(world, monkeypatch):
    # GIVEN a three-part upload
    small_parts(monkeypatch)
    _, body = create(world, {"upload": "zip", "archive_bytes": 11 * 1024 * 1024})
    # WHEN the client asks for parts 2 and 3 by number (the sample event's body)
    event = harness.load_event("api_upload_parts.json")
    status, fresh = resign(world, body["job_id"], json.loads(event["body"]))
    # THEN it gets exactly those; a part number outside the upload is refused
    assert status == 200 and [p["part_number"] for p in fresh["upload"]["parts"]] == [2, 3]
    status, refused = resign(world, body["job_id"], {"part_numbers": [4]})
    assert status == 400 and "4" in refused["message"]


def test_a_single_put_archive_still_awaited_gets_a_fresh_url(world):
    # GIVEN a job whose archive goes up in one PUT, not sent before its URL expired
    _, body = create(world)
    job_id, key = body["job_id"], body["upload"]["key"]
    # WHEN fresh URLs are asked for
    status, fresh = resign(world, job_id)
    # THEN a new PUT URL for the same key comes back, and it uploads the archive
    assert status == 200 and fresh["upload"]["kind"] == "zip"
    assert assert_upload_url(fresh["upload"]["url"], job_id) == key
    assert put_part(fresh["upload"]["url"], b"PK\x05\x06" + bytes(18))
    assert boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 22


@pytest.mark.parametrize("state", ["started", "unknown"])
def test_re_signing_needs_an_upload_still_awaited(world, state):
    # GIVEN a job already started, or no job at all
    if state == "started":
        job_id = JOB_ID
        seed_job(job_id, "RUNNING")
    else:
        job_id = "job-9999"
    # WHEN fresh part URLs are asked for
    status, body = resign(world, job_id)
    # THEN 409 says why (404 for an unknown job)
    assert status == (404 if state == "unknown" else 409), body


def test_cancel_before_the_upload_completes_aborts_it(world, monkeypatch):
    # GIVEN a multipart upload with one part sent
    part_bytes = small_parts(monkeypatch)
    _, body = create(world, {"upload": "zip", "archive_bytes": 11 * 1024 * 1024})
    job_id, upload = body["job_id"], body["upload"]
    put_part(upload["parts"][0]["url"], bytes(part_bytes))
    # WHEN the job is cancelled
    status, cancelled = call(world, "api_cancel_job.json", path=f"/jobs/{job_id}/cancel")
    # THEN it is CANCELLED and S3 no longer holds (nor bills for) the parts
    assert status == 200 and cancelled["status"] == "CANCELLED"
    assert "Uploads" not in boto3.client("s3", region_name=REGION).list_multipart_uploads(Bucket=BUCKET)
