"""Inputs at URLs (fsspec): listed like paths, decoded from a local copy, and named by
their URL. ``memory://`` is fsspec's in-process file system, so the commands run in this
process (CliRunner); ``--ray`` with ``file://`` URLs is in tests/jobs/test_on_ray.py."""

import dataclasses
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import FIXTURES
from xai_cli.cli import main
from xai_cli.errors import InputError, XaiError
from xai_cli.io import clips, documents, inputs, signals, storage

fsspec = pytest.importorskip("fsspec")   # the [ray] extra

MODEL = str(FIXTURES / "digits.keras")


@pytest.fixture
def bucket(tmp_path):
    """The same inputs in a local folder and under memory://bucket-N/: three digits as
    PNGs, a batch of four in a .npy, a broken PNG and a text file."""
    digits = np.load(FIXTURES / "digits_test_x.npy")
    local = tmp_path / "local"
    (local / "pictures").mkdir(parents=True)
    for i in range(3):
        Image.fromarray((digits[i, ..., 0] * 255).astype(np.uint8)).save(local / "pictures" / f"d{i}.png")
    np.save(local / "batch.npy", digits[3:7])
    (local / "pictures" / "broken.png").write_bytes(b"not an image")
    (local / "notes.txt").write_text("not an input")
    memory = fsspec.filesystem("memory")
    url = f"memory://bucket-{tmp_path.name}"
    for path in local.rglob("*"):
        if path.is_file():
            memory.pipe(f"{url}/{path.relative_to(local)}", path.read_bytes())
    yield local, url
    memory.rm(url, recursive=True)


def _files(folder):
    """The heatmaps, arrays and thumbnails a job wrote (the page and records name the inputs)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "index.html" and "records" not in p.parts}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_prefix_and_a_glob_list_the_kinds_files_as_urls(bucket):
    _, url = bucket
    items, problems = inputs.discover([url])
    assert [i.source.split(url.split("://")[1])[1] for i in items] == \
        ["/batch.npy"] * 4 + ["/pictures/broken.png", "/pictures/d0.png", "/pictures/d1.png",
                              "/pictures/d2.png"]
    assert [i.stem for i in items][:5] == ["batch-0", "batch-1", "batch-2", "batch-3", "broken"]
    assert problems == []
    items, _ = inputs.discover([f"{url}/pictures/d*.png"])
    assert [i.stem for i in items] == ["d0", "d1", "d2"]
    assert inputs.discover([f"{url}/nothing.png", f"{url}/x*.png"])[1] == \
        [(f"{url}/nothing.png", "no such file"), (f"{url}/x*.png", "no files match this pattern")]


def test_explain_reads_urls_as_it_reads_the_same_files(bucket, tmp_path):
    local, url = bucket
    args = ["-p", "unit", "-m", "lrp", "--save-raw", "-b", "3"]
    here = run("explain", MODEL, local / "batch.npy", local / "pictures", *args, "-o", tmp_path / "a")
    there = run("explain", MODEL, f"{url}/batch.npy", f"{url}/pictures/", *args, "-o", tmp_path / "b")
    assert here.exit_code == there.exit_code == 1, there.output   # the broken PNG
    said = [json.loads(line) for line in there.stdout.splitlines()]
    assert [r["input"].startswith(url.replace("://", ":///")) for r in said] == [True] * 8
    assert [r["status"] for r in said] == [r["status"] for r in map(json.loads, here.stdout.splitlines())]
    assert _files(tmp_path / "b") == _files(tmp_path / "a")
    assert "not a recognised image" in there.stderr


def test_an_unknown_protocol_an_output_url_and_documents_at_urls_are_refused(bucket, tmp_path,
                                                                            monkeypatch):
    with pytest.raises(XaiError, match="nosuch"):
        storage.expand("nosuch://bucket/x.png", (".png",))
    unknown = run("explain", MODEL, "nosuch://bucket/x.png", "-p", "unit", "-o", tmp_path / "a")
    assert unknown.exit_code == 2 and "Traceback" not in unknown.output
    monkeypatch.chdir(tmp_path)
    to_bucket = run("explain", MODEL, f"{bucket[1]}/batch.npy", "-o", "s3://bucket/out")
    assert to_bucket.exit_code == 2
    assert "'s3://bucket/out' is a URL; xai writes to a folder" in to_bucket.stderr
    assert not (tmp_path / "s3:").exists()
    assert documents.discover([f"{bucket[1]}/notes.txt"], False, None)[1] == \
        [(f"{bucket[1]}/notes.txt", "documents are read from local files only: copy them here")]


def test_each_kind_lists_its_own_files_under_a_prefix(bucket):
    _, url = bucket
    memory = fsspec.filesystem("memory")
    memory.pipe(f"{url}/clips/walk.gif", b"GIF89a")
    for number in (10, 2):
        memory.pipe(f"{url}/signals/ecg{number}.csv", b"a\n1\n")
    assert [storage.name(p) for p in clips.expand(url)[0]] == ["batch.npy", "walk.gif"]
    # signals sort with the numbers in their names as numbers, as they do on a disk
    assert [storage.name(p) for p in signals.expand(url)[0]] == ["batch.npy", "ecg2.csv", "ecg10.csv"]


def test_a_decoder_reads_a_local_copy_that_is_deleted_after(bucket):
    _, url = bucket
    seen = []

    def decode(item):
        seen.append(item.source)
        return Decoded(item, open(item.source, "rb").read())
    item = inputs.InputItem(f"{url}/notes.txt", "notes")
    decoded = storage.Staged(decode)(item)
    assert decoded == Decoded(item, b"not an input")
    assert not seen[0].startswith("memory:") and not os.path.exists(seen[0])
    with pytest.raises(InputError, match="cannot fetch"):
        storage.Staged(decode)(inputs.InputItem(f"{url}/gone.png", "gone"))


@dataclasses.dataclass
class Decoded:
    item: inputs.InputItem
    data: bytes
