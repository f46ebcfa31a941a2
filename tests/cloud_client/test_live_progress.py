"""Live progress on the local stack: what the SageMaker stand-in sends to CloudWatch (a job's output, a training job's
metrics) is what GET /jobs/{id} reads back, and `status` shows it."""

from __future__ import annotations

from spaceport.cli import main
from spaceport.cloud.local_stack.cloudwatch import JobTelemetry
from spaceport.cloud.models import Stage
from spaceport.sfm.progress import format_progress as sfm_line
from spaceport.train.progress import METRIC_DEFINITIONS
from spaceport.train.progress import format_progress as train_line

from .conftest import client_for, waiting_for


def test_the_stand_ins_training_metrics_and_sfm_lines_reach_get_job_and_status(stack, capsys):
    # GIVEN a training job and an sfm job of the stand-in, printing their progress lines as the stages do
    client = client_for(stack)
    waiting_for("job-train-live", Stage.TRAIN, "sp-job-train-live-train-a1-abcdef")
    waiting_for("job-sfm-live", Stage.SFM, "sp-job-sfm-live-sfm-a1-abcdef")
    training = JobTelemetry(stack.client, "sp-job-train-live-train-a1-abcdef", True, METRIC_DEFINITIONS)
    sfm = JobTelemetry(stack.client, "sp-job-sfm-live-sfm-a1-abcdef", False, [])
    for line in (
        "INFO spaceport.train: preset fast",
        train_line(25, 0.2, 14.5, 3000),
        train_line(50, 0.1, 17.25, 4100),
    ):
        training.line(line + "\n")
    for line in (sfm_line("extraction", 32), "I1207 glog noise", sfm_line("mapping", 32, 12)):
        sfm.line(line + "\n")
    training.close()
    sfm.close()
    # WHEN the jobs are read through the API
    train_view = client.task("job-train-live").info()
    sfm_view = client.task("job-sfm-live").info()
    # THEN the train stage reports the newest step of the steps, and the PSNR and Gaussians of the newest minute
    # (CloudWatch keeps SageMaker's metrics per minute: their average over it, here both lines' unless a minute
    # turned between them), and its log stream
    live = train_view["stages"]["train"]["live"]
    assert (live["step"], live["total_steps"]) == (50, 400)
    assert 14.5 < live["psnr"] <= 17.25 and 3000 < live["gaussians"] <= 4100
    assert train_view["stages"]["train"]["log"]["stream"] == training.stream
    # AND the sfm stage its phase and photos registered
    assert sfm_view["stages"]["sfm"]["live"]["phase"] == "mapping"
    assert sfm_view["stages"]["sfm"]["live"]["registered"] == 12
    # AND `status` shows both, with the running stage's log stream
    assert main(["cloud", "status", "job-train-live", "--api-url", stack.api_url, "--region", "us-east-1"]) == 3
    out = capsys.readouterr().out
    assert f"step 50/400, PSNR {live['psnr']:.2f} dB, {live['gaussians']:,} Gaussians" in out
    assert f"train log: CloudWatch Logs /aws/sagemaker/TrainingJobs, stream {training.stream}" in out
    assert main(["cloud", "status", "job-sfm-live", "--api-url", stack.api_url, "--region", "us-east-1"]) == 3
    assert "mapping: 12/32 photos registered" in capsys.readouterr().out
