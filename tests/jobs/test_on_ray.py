"""--ray: explain, evaluate and spray on a local Ray cluster of 2 CPUs write what a local
run writes, byte for byte, with the records in input order, also when an actor is killed
in the middle of the job or the job is resumed from its parts."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, digit_inputs
from xai_cli.cli import main

ray = pytest.importorskip("ray")

MODEL = str(FIXTURES / "digits.keras")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A local Ray cluster of 2 CPUs for this module (the commands join it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Ten digits in one .npy, a broken file and masks."""
    return digit_inputs(tmp_path_factory.mktemp("inputs"))


def files(folder: Path) -> dict[str, bytes]:
    """Every file a job wrote, by its path in the folder (the page names the folder)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "index.html"}


def records(text: str, folder: Path) -> list[dict]:
    return [json.loads(line.replace(str(folder), "OUT")) for line in text.splitlines()]


def in_input_order(lines: list[dict]) -> list[dict]:
    return sorted(lines, key=lambda r: (r["input"].endswith("broken.png"), r["index"] or 0))


def same_job(local, on_ray, local_out: Path, ray_out: Path):
    """The same exit code, records and files, the same bytes but for the records (they
    name the folder) and the parts (zip files stamp their time). The records come in input
    order (a local run says an input that fails to decode as soon as it is read)."""
    assert on_ray.exit_code == local.exit_code, on_ray.output
    said = records(on_ray.stdout, ray_out)
    assert said == in_input_order(said)
    assert said == in_input_order(records(local.stdout, local_out))
    written, expected = files(ray_out), files(local_out)
    assert sorted(written) == sorted(expected)
    assert not [name for name in expected if written[name] != expected[name]
                and not name.startswith(("records", "parts"))]


def test_explain_on_ray_writes_what_a_local_run_writes(inputs, tmp_path):
    args = ["explain", MODEL, inputs / "x.npy", inputs / "broken.png", "-p", "unit", "-b", "3",
            "-m", "lrp", "-m", "smoothgrad", "--save-raw"]
    local = run(*args, "-o", tmp_path / "local")
    on_ray = run(*args, "-o", tmp_path / "ray", "--ray-actors", "2", "--ray")
    assert local.exit_code == 1, local.output    # the broken input, reported by both
    assert "broken.png" in on_ray.stderr
    same_job(local, on_ray, tmp_path / "local", tmp_path / "ray")
    assert len(records(on_ray.stdout, tmp_path)) == 11


def test_inputs_at_urls_are_fetched_by_the_decoding_tasks(inputs, tmp_path):
    """file:// URLs stand for a bucket: the inputs are listed by fsspec and each decoding
    task reads its own copy; the outputs are a local run's, the records name the URLs."""
    args = ["-p", "unit", "-b", "4", "-m", "lrp"]
    local = run("explain", MODEL, inputs / "x.npy", inputs / "broken.png", *args, "-o", tmp_path / "local")
    on_ray = run("explain", MODEL, f"file://{inputs}/x.npy", f"file://{inputs}/broken.png", *args,
                 "-o", tmp_path / "ray", "--ray")
    assert on_ray.exit_code == local.exit_code == 1, on_ray.output
    said = records(on_ray.stdout, tmp_path / "ray")
    assert [r["input"] for r in said] == [f"file://{inputs}/x.npy"] * 10 + [f"file://{inputs}/broken.png"]
    written = {k: v for k, v in files(tmp_path / "ray").items() if not k.startswith("records")}
    assert written == {k: v for k, v in files(tmp_path / "local").items() if not k.startswith("records")}


def test_evaluate_on_ray_writes_what_a_local_run_writes(inputs, tmp_path):
    args = ["evaluate", MODEL, inputs / "x.npy", "-p", "unit", "-b", "4", "-m", "lrp",
            "-m", "sa", "--perturb", "8x8", "--steps", "5", "--masks", inputs / "masks",
            "--sanity"]
    local = run(*args, "-o", tmp_path / "local")
    on_ray = run(*args, "--ray", "-o", tmp_path / "ray")
    assert local.exit_code == 0, local.output
    same_job(local, on_ray, tmp_path / "local", tmp_path / "ray")
    assert on_ray.stderr.count("\n") >= local.stderr.count("xai:")   # the summary table too

    # a lost part is all a resumed job computes, and the results stay the same
    summary = (tmp_path / "ray" / "summary.csv").read_bytes()
    (tmp_path / "ray" / "parts" / "evaluate" / "batch-000001.npz").unlink()
    resumed = run(*args, "--ray", "-o", tmp_path / "ray", "--skip-existing")
    assert resumed.exit_code == 0, resumed.output
    assert "6 inputs were done by an earlier run; computing the other 4" in resumed.stderr
    assert (tmp_path / "ray" / "summary.csv").read_bytes() == summary


def test_spray_clusters_the_features_gathered_from_the_actors(inputs, tmp_path):
    pytest.importorskip("sklearn")
    args = ["spray", MODEL, inputs / "x.npy", "-p", "unit", "-b", "3", "--target", "3",
            "--clusters", "2"]
    local = run(*args, "-o", tmp_path / "local")
    on_ray = run(*args, "--ray", "--ray-actors", "2", "-o", tmp_path / "ray")
    assert local.exit_code == 0, local.output
    same_job(local, on_ray, tmp_path / "local", tmp_path / "ray")


def _actor_processes() -> set[int]:
    """The processes of the job's actors (Ray names them by the class they hold)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"MapWorker" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds actors in /proc")
def test_a_killed_actor_is_replaced_and_the_results_do_not_change(inputs, tmp_path):
    args = ["evaluate", MODEL, inputs / "x.npy", "-p", "unit", "-b", "1", "-m", "lrp",
            "--perturb", "4x4", "--steps", "20", "--replace", "uniform", "--replace", "blur"]
    local = run(*args, "-o", tmp_path / "local")
    before = _actor_processes()
    job: dict = {}
    thread = threading.Thread(target=lambda: job.update(result=run(
        *args, "--ray", "-o", tmp_path / "ray")))
    thread.start()
    parts = tmp_path / "ray" / "parts" / "evaluate"
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        started = _actor_processes() - before
        if started and len(list(parts.glob("batch-*.npz"))) >= 2:   # mid-job: 8 to go
            killed = min(started)
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join()
    assert killed is not None, "the job ended before an actor could be killed"
    assert not Path(f"/proc/{killed}").exists() or b"MapWorker" not in \
        Path(f"/proc/{killed}/cmdline").read_bytes()
    same_job(local, job["result"], tmp_path / "local", tmp_path / "ray")


def test_ray_is_refused_with_a_shard_and_named_when_missing(inputs, tmp_path, monkeypatch):
    args = ["explain", MODEL, inputs / "x.npy", "-p", "unit", "-o", tmp_path]
    sharded = run(*args, "--shard", "1/2", "--ray")
    assert sharded.exit_code == 2
    assert "leave out --shard" in sharded.stderr
    misplaced = run("explain", "--ray", MODEL, inputs / "x.npy")
    assert misplaced.exit_code == 2
    assert "put --ray after the inputs" in misplaced.stderr

    from xai_cli.jobs import on_ray
    monkeypatch.setattr(on_ray.importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else object())
    missing = run(*args, "--ray")
    assert missing.exit_code == 2
    assert "pip install 'xai[ray]'" in missing.stderr
    assert not list(tmp_path.iterdir())   # nothing written
