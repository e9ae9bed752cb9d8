"""Shards of one job, written into one folder, come back as the unsharded run's results."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, digit_inputs
from xai_cli.cli import main

MODEL = str(FIXTURES / "digits.keras")
RESULTS = ("curves.csv", "summary.csv", "comparisons.csv", "localisation.csv", "sanity.csv")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """11 inputs in batches of 3 (the last batch short, one input failing), evaluated once
    unsharded and once as 3 shards into one folder."""
    root = digit_inputs(tmp_path_factory.mktemp("shards"))
    args = ["evaluate", MODEL, root / "x.npy", root / "broken.png", "-p", "unit", "-b", "3",
            "-m", "lrp", "-m", "smoothgrad", "--perturb", "8x8", "--steps", "5",
            "--replace", "uniform", "--replace", "mean", "--lerf", "--masks", root / "masks",
            "--sanity"]
    whole = run(*args, "-o", root / "whole")
    assert whole.exit_code == 1, whole.output                 # the broken input
    for k in (1, 2, 3):
        shard = run(*args, "--shard", f"{k}/3", "-o", root / "sharded")
        assert shard.exit_code in (0, 1), shard.output
    return root, args


def test_merged_shards_are_the_unsharded_results_byte_for_byte(job):
    root, _ = job
    merged = run("report", root / "sharded")
    assert merged.exit_code == 0, merged.output
    assert "merged 3 evaluate shards" in merged.stderr
    for name in RESULTS:
        assert (root / "sharded" / name).read_bytes() == (root / "whole" / name).read_bytes(), name
    # the shards' own tables went to their subfolders, not over the merged ones
    assert (root / "sharded" / "shards" / "evaluate-shard-2-of-3" / "summary.csv").is_file()


def test_a_missing_shard_is_named(job, tmp_path):
    _, args = job
    result = run(*args, "--shard", "1/2", "-o", tmp_path)
    assert result.exit_code in (0, 1)
    merged = run("report", tmp_path)
    assert merged.exit_code == 2
    assert "evaluate shard 2/2 has not started" in merged.stderr


def test_shards_of_different_jobs_are_refused(job, tmp_path):
    _, args = job
    run(*args, "--shard", "1/2", "-o", tmp_path)
    run(*[a if a != "5" else "4" for a in args], "--shard", "2/2", "-o", tmp_path)
    merged = run("report", tmp_path)
    assert merged.exit_code == 2
    assert "ran different jobs (other steps)" in merged.stderr


def test_the_shards_records_cover_every_input(job):
    root, _ = job
    records = [json.loads(line) for f in sorted((root / "sharded" / "records").glob("*.jsonl"))
               for line in f.read_text().splitlines()]
    ok = sorted(r["index"] for r in records if r["status"] == "ok")
    assert ok == list(range(10))


def test_spray_shards_are_gathered_by_a_last_unsharded_run(tmp_path):
    """Clustering needs every heatmap: the shards keep their features, and a run without
    --shard (with --skip-existing) takes them in and clusters them, computing none."""
    pytest.importorskip("sklearn")
    np.save(tmp_path / "x.npy", np.load(FIXTURES / "digits_test_x.npy")[:10])
    args = ["spray", MODEL, tmp_path / "x.npy", "-p", "unit", "-b", "3", "--target", "3",
            "--clusters", "2"]
    whole = run(*args, "-o", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    for k in (1, 2):
        shard = run(*args, "--shard", f"{k}/2", "-o", tmp_path / "sharded")
        assert shard.exit_code == 0, shard.output
    assert not (tmp_path / "sharded" / "clusters.csv").exists()   # a shard's are its own
    assert (tmp_path / "sharded" / "shards" / "spray-shard-2-of-2" / "clusters.csv").is_file()
    gathered = run(*args, "--skip-existing", "-o", tmp_path / "sharded")
    assert gathered.exit_code == 0, gathered.output
    assert "took the features of 4 batches from the 2 spray shards" in gathered.stderr
    assert "10 inputs were done by an earlier run; computing the other 0" in gathered.stderr
    for name in ("clusters.csv", "eigenvalues.csv", "cluster_0_mean.png", "cluster_1_members.png"):
        assert (tmp_path / "sharded" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()

    other = run(*args[:-1], "3", "--skip-existing", "-o", tmp_path / "sharded")
    assert other.exit_code == 0   # --clusters is not part of the job: features are reused
    changed = run(*args, "--seed", "1", "--skip-existing", "-o", tmp_path / "sharded")
    assert changed.exit_code == 2
    assert "ran another job" in changed.stderr or "other seed" in changed.stderr
