"""``spaceport cloud VERB``: the deployed stack from the command line, a thin layer over ``tasks.Client``.

Credentials come from the AWS SDK's chain; ``--profile`` and ``--region`` choose them as the AWS CLI's do. Progress
is a bar on a terminal and plain lines elsewhere. Exit status: 0 the job succeeded (or the command did), 1 it failed
(or the command did), 2 it was cancelled; ``status`` without ``--watch`` exits 3 while the job is still going.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_CANCELLED, EXIT_RUNNING = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # as a shell reports SIGINT
OUTCOME_EXIT = {"SUCCEEDED": EXIT_OK, "FAILED": EXIT_FAILED, "CANCELLED": EXIT_CANCELLED}
PRESETS = ("fast", "default", "quality")
STAGE_NAMES = ("validate", "sfm", "train", "compress")
COMMAND = "spaceport cloud"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="AWS profile (default: the SDK's chain: AWS_PROFILE, environment, ...)")
    parser.add_argument("--region", help="AWS region (default: the profile's, or AWS_REGION)")
    parser.add_argument("--api-url", help="the jobs API's URL (default: what `init` found in the stack's outputs)")


def configure(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = lambda name, text: verbs.add_parser(name, help=text, description=text)  # noqa: E731
    init = add("init", "find the deployed stack, record its API, check access, the stage images and the GPU quota")
    init.add_argument("--stack-name", default="spaceport", help="the stack `sam deploy` created (default spaceport)")
    build = add("build-images", "build the stage images from this checkout with the stack's CodeBuild project")
    build.add_argument("--wait", action="store_true", help="follow the build to its end")
    build.add_argument("--checkout", type=Path, default=Path("."), help="the git checkout to build (default .)")
    submit = add("submit", "validate, archive and upload photos; the job starts when the upload completes")
    submit.add_argument("photos", type=Path, help="a folder (nested folders allowed) or a .zip of photos")
    submit.add_argument("--preset", choices=PRESETS, help="training preset (default: the stack's DefaultPreset)")
    submit.add_argument("--iterations", type=int, help="training steps instead of the preset's")
    submit.add_argument("--no-georef", action="store_true", help="keep SfM's frame: no GPS registration, not upright")
    submit.add_argument("--webhook", metavar="URL", help="POST each status change here, signed (default: the stack's)")
    submit.add_argument("--wait", action="store_true", help="follow the job to its end (exit status: its outcome)")
    submit.add_argument("--out", type=Path, help="with --wait: download the scene here when it succeeds")
    submit.add_argument("--open", action="store_true", help="with --wait: download, then open it in the viewer")
    resume = add("resume", "send what S3 does not hold yet of a job's upload (same photos), then complete it")
    resume.add_argument("job_id")
    resume.add_argument("photos", type=Path)
    resume.add_argument("--wait", action="store_true", help="follow the job to its end")
    for uploading in (submit, resume):
        uploading.add_argument("--parallel", type=int, default=4, help="parts sent at once (default 4)")
    status = add("status", "a job's stage, queue position, cost, failure reason and the retry command")
    status.add_argument("job_id")
    status.add_argument("--watch", action="store_true", help="follow the job to its end (exit status: its outcome)")
    status.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    listing = add("list", "the newest jobs")
    listing.add_argument("--limit", type=int, default=25)
    cancel = add("cancel", "cancel a job: its upload, execution and SageMaker jobs")
    cancel.add_argument("job_id")
    retry = add("retry", "run a FAILED or CANCELLED job again, by default from the stage that failed")
    retry.add_argument("job_id")
    retry.add_argument("--from-stage", choices=STAGE_NAMES)
    retry.add_argument("--wait", action="store_true", help="follow the job to its end")
    download = add("download", "download a succeeded job's scene, each file checked against its manifest (SHA-256)")
    download.add_argument("job_id")
    download.add_argument("--out", type=Path, required=True, help="the folder to write (created)")
    view = add("view", "download a succeeded job (unless already there), then open it in the viewer")
    view.add_argument("job_id")
    view.add_argument("--out", type=Path, help="the folder to download into (default ./spaceport-JOB)")
    view.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    view.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    console = add("console", "a job console in the browser: live progress, new jobs by drag-and-drop, cancel, retry")
    console.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    console.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    console.add_argument("--work", type=Path, help="staged uploads and downloaded scenes (default: the user's cache)")
    for subparser in verbs.choices.values():
        _common(subparser)


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    from spaceport.cloud.client.errors import CloudError

    try:
        return VERBS[args.verb](args) if args.verb not in SERVING else SERVING[args.verb](args, stop)
    except CloudError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        # The job lives on in the cloud: an upload resumes (`resume`), a job is followed again (`status --watch`).
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# ---------------------------------------------------------------- verbs


def _session(args: argparse.Namespace) -> Any:
    from spaceport.cloud.client.session import AwsSession

    return AwsSession(args.profile, args.region)


def _client(args: argparse.Namespace) -> Any:
    from spaceport.cloud.client import config
    from spaceport.cloud.client.tasks import Client

    session = _session(args)
    if args.api_url:
        deployment = config.Deployment(stack="", region=session.region, api_url=args.api_url, bucket="")
    else:
        deployment = config.load(args.profile, session.region)
    return Client(deployment, session, parallel=max(1, getattr(args, "parallel", 4)))


def init(args: argparse.Namespace) -> int:
    from spaceport.cloud.client import config
    from spaceport.cloud.client.deployment import check_deployment, find_deployment

    session = _session(args)
    deployment = find_deployment(session, args.stack_name)
    path = config.save(deployment, args.profile)
    print(f"stack {deployment.stack} in {deployment.region}: API {deployment.api_url}, bucket {deployment.bucket}")
    print(f"recorded in {path}")
    checks = check_deployment(deployment, session)
    for check in checks:
        mark = {True: "ok", False: "MISSING", None: "unknown"}[check.ok]
        print(f"  {check.name:<15} {mark:<8} {check.detail}")
    return EXIT_FAILED if any(check.ok is False for check in checks) else EXIT_OK


def build_images(args: argparse.Namespace) -> int:
    from spaceport.cloud.client import config
    from spaceport.cloud.client.build import follow_build, start_build

    session = _session(args)
    deployment = config.load(args.profile, session.region)
    build_id, uncommitted = start_build(session, deployment, args.checkout)
    if uncommitted:
        print(f"note: {len(uncommitted)} uncommitted changes are not in the build (it builds HEAD)", file=sys.stderr)
    print(f"build {build_id} started ({deployment.build_project})")
    if not args.wait:
        return EXIT_OK
    status = follow_build(session, build_id, lambda phase, build: print(f"  {phase}", flush=True))
    print(f"build {status}")
    return {"SUCCEEDED": EXIT_OK, "STOPPED": EXIT_CANCELLED}.get(status, EXIT_FAILED)


def submit(args: argparse.Namespace) -> int:
    from spaceport.cloud.client.progress import UploadProgress
    from spaceport.cloud.client.report import describe_estimate

    client = _client(args)
    options: dict[str, Any] = {"preset": args.preset, "iterations": args.iterations, "webhook_url": args.webhook}
    options = {key: value for key, value in options.items() if value is not None}
    if args.no_georef:
        options["georef"] = False
    progress = UploadProgress()

    def created(job: Any) -> None:
        print(f"job {job.job['job_id']}: {job.archive.photo_count} photos, {job.archive.size} bytes to upload")
        for warning in job.archive.warnings:
            print(f"  warning: {warning}")
        print("\n".join(describe_estimate(job.job.get("estimate", {}))), flush=True)
        print(f"if the upload stops, resume it: {COMMAND} resume {job.job['job_id']} {args.photos}", flush=True)

    try:
        task = client.create_task(args.photos, options, progress, on_created=created)
    finally:
        progress.close()
    print(f"uploaded: job {task.job_id} starts; follow it with `{COMMAND} status {task.job_id} --watch`")
    return _follow(task, args) if args.wait else EXIT_OK


def resume(args: argparse.Namespace) -> int:
    from spaceport.cloud.client.progress import UploadProgress

    task = _client(args).task(args.job_id)
    progress = UploadProgress()
    try:
        sent = task.resume_upload(args.photos, progress)
    finally:
        progress.close()
    print(f"job {args.job_id}: sent part(s) {', '.join(map(str, sent)) or 'none'}; upload complete")
    return _follow(task, args) if args.wait else EXIT_OK


def _follow(task: Any, args: argparse.Namespace) -> int:
    """Follow a job to its end, print where it ended; with --out or --open, download (and view) a success."""
    from spaceport.cloud.client.errors import TaskCancelledError, TaskFailedError
    from spaceport.cloud.client.progress import StageProgress
    from spaceport.cloud.client.report import describe_job

    progress = StageProgress()
    try:
        task.wait_for_completion(progress, interval=getattr(args, "interval", 5.0))
    except (TaskFailedError, TaskCancelledError):
        pass
    finally:
        progress.close()
    final = task.info()
    print("\n".join(describe_job(final, COMMAND)))
    if final["status"] != "SUCCEEDED":
        return OUTCOME_EXIT[final["status"]]
    out = getattr(args, "out", None) or (Path(f"spaceport-{task.job_id}") if getattr(args, "open", False) else None)
    if out is not None:
        _download_into(task, out)
        if getattr(args, "open", False):
            return _serve(out, port=0, no_browser=False, stop=None)
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    from spaceport.cloud.client.report import describe_job

    task = _client(args).task(args.job_id)
    if args.watch:
        return _follow(task, args)
    view = task.info()
    print("\n".join(describe_job(view, COMMAND)))
    return OUTCOME_EXIT.get(view["status"], EXIT_RUNNING)


def list_jobs(args: argparse.Namespace) -> int:
    from spaceport.cloud.client.report import job_line

    page = _client(args).api.list_jobs(limit=args.limit)
    for view in page["jobs"]:
        print(job_line(view))
    if page.get("next"):
        print(f"(more: newest {args.limit} shown; --limit raises it)")
    return EXIT_OK


def cancel(args: argparse.Namespace) -> int:
    view = _client(args).task(args.job_id).cancel()
    print(f"job {args.job_id}: {view['status']}")
    return EXIT_OK


def retry(args: argparse.Namespace) -> int:
    task = _client(args).task(args.job_id)
    view = task.restart(args.from_stage)
    print(f"job {args.job_id}: {view['status']} again, from {args.from_stage or 'the stage that failed'}")
    return _follow(task, args) if args.wait else EXIT_OK


def _download_into(task: Any, out: Path) -> dict[str, Path]:
    files = task.download_assets(out, on_file=lambda name: print(f"  verified {name}", flush=True))
    print(f"job {task.job_id}: {len(files)} files in {out}, every one checked against its stage's manifest")
    return files


def download(args: argparse.Namespace) -> int:
    _download_into(_client(args).task(args.job_id), args.out)
    return EXIT_OK


def view(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    from spaceport.cloud.client.download import JOB_FILE

    out = args.out or Path(f"spaceport-{args.job_id}")
    if not (out / "scene.sog").is_file() or not (out / JOB_FILE).is_file():
        _download_into(_client(args).task(args.job_id), out)
    return _serve(out, args.port, args.no_browser, stop)


def _serve(folder: Path, port: int, no_browser: bool, stop: threading.Event | None) -> int:
    from spaceport.viewer import command as viewer

    return viewer.run(argparse.Namespace(directory=folder, port=port, no_browser=no_browser), stop)


def console(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve the job console until Ctrl-C (or ``stop``); every API call it makes is signed here, never in the page."""
    from urllib.parse import urlsplit

    from spaceport.cloud.console.server import Console, start_console
    from spaceport.viewer.server import serve_until_stopped

    client = _client(args)
    work = args.work or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spaceport" / "console"
    who = f", profile {args.profile}" if args.profile else ""
    app = Console(client, work, f"{urlsplit(client.deployment.api_url).netloc} · {client.session.region}{who}")
    try:
        server = start_console(app, args.port)
    except OSError as error:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {error.strerror}; try --port 0", file=sys.stderr)
        return EXIT_FAILED
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"Console at {url} (Ctrl-C to stop); uploads and scenes in {work}", flush=True)
    try:
        serve_until_stopped(server, url, not args.no_browser, stop)
    finally:
        app.close()
    return EXIT_OK


VERBS = {
    "init": init, "build-images": build_images, "submit": submit, "resume": resume, "status": status,
    "list": list_jobs, "cancel": cancel, "retry": retry, "download": download,
}  # fmt: skip
# Verbs that serve a page until interrupted (or until a test sets ``stop``).
SERVING = {"view": view, "console": console}
