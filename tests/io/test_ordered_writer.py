"""The background writer's ordered follow-ups: parallel writes, records in submission order."""

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from xai_cli.io import inputs, outputs, render


def _slow_when(gates):
    """A write that waits for its gate (if any), so that a test decides the finishing order."""
    def write(key):
        if key in gates:
            assert gates[key].wait(5)
        return key
    return write


def test_follow_ups_run_in_submission_order_when_later_writes_finish_first():
    gates = {0: threading.Event(), 2: threading.Event()}
    finished, followed = [], []
    write = _slow_when(gates)
    with outputs.BackgroundWriter(workers=4) as writer:
        for key in range(6):
            writer.submit(lambda k: finished.append(write(k)) or k, key, then=followed.append)
        deadline = time.monotonic() + 5
        while len(finished) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(finished) == [1, 3, 4, 5] and followed == []  # all wait for 0
        gates[0].set()
        deadline = time.monotonic() + 5
        while len(followed) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert followed == [0, 1]  # 3, 4 and 5 wait for 2
        gates[2].set()
    assert followed == [0, 1, 2, 3, 4, 5]


def test_each_follow_up_runs_exactly_once_after_its_write():
    written, followed = set(), []

    def write(key):
        time.sleep(0.001 * (key % 5))
        written.add(key)
        return key

    def follow(key):
        assert key in written
        followed.append(key)

    with outputs.BackgroundWriter(workers=8, max_pending=16) as writer:
        for key in range(300):
            writer.submit(write, key, then=follow)
    assert followed == list(range(300))


def test_pending_jobs_include_those_waiting_for_their_turn():
    gate, followed = threading.Event(), []
    writer = outputs.BackgroundWriter(workers=4, max_pending=2)
    writer.submit(gate.wait, then=followed.append)
    writer.submit(lambda: "quick", then=followed.append)  # finishes, but waits for its turn
    third = threading.Thread(target=writer.submit, args=(lambda: "third",),
                             kwargs={"then": followed.append})
    third.start()
    third.join(0.2)
    assert third.is_alive() and followed == []
    gate.set()
    third.join(5)
    writer.close()
    assert not third.is_alive() and followed == [True, "quick", "third"]


def test_a_failed_write_has_no_follow_up_and_the_others_keep_their_order():
    gate, followed = threading.Event(), []

    def write(key):
        if key == 1:
            assert gate.wait(5)
            raise OSError("disk full")
        return key

    with pytest.raises(OSError, match="disk full"):
        with outputs.BackgroundWriter(workers=3) as writer:
            for key in range(3):
                writer.submit(write, key, then=followed.append)
            gate.set()
    assert followed == [0, 2]


def test_the_first_failure_in_submission_order_is_raised_by_later_submits():
    gate = threading.Event()

    def fail(message, wait):
        if wait:
            assert gate.wait(5)
        raise OSError(message)

    writer = outputs.BackgroundWriter(workers=2)
    writer.submit(fail, "first", True)
    writer.submit(fail, "second", False)
    gate.set()
    with pytest.raises(OSError, match="first"):
        writer.drain()
    with pytest.raises(OSError, match="first"):
        writer.submit(lambda: None)
    with pytest.raises(OSError, match="first"):
        writer.close()


def test_a_failed_follow_up_is_raised_and_later_follow_ups_still_run():
    gates, followed = {0: threading.Event()}, []

    def follow(key):
        if key == 0:
            raise BrokenPipeError("stdout closed")
        followed.append(key)

    writer = outputs.BackgroundWriter(workers=2)
    for key in range(3):
        writer.submit(_slow_when(gates), key, then=follow)
    gates[0].set()
    with pytest.raises(BrokenPipeError):
        writer.close()
    assert followed == [1, 2]


@pytest.mark.parametrize("cores,threads", [(1, 2), (4, 4), (6, 6), (64, 8)])
def test_worker_threads_follow_the_cores(cores, threads, monkeypatch):
    monkeypatch.setattr(inputs.os, "sched_getaffinity", lambda pid: set(range(cores)),
                        raising=False)
    assert inputs.worker_threads() == threads


def test_grids_drawn_on_several_threads_are_the_bytes_drawn_on_one():
    rng = np.random.default_rng(0)
    display = rng.integers(0, 256, (28, 28, 3), np.uint8)
    jobs = [rng.normal(size=(28, 28)) for _ in range(12)]

    def draw(relevance):
        heat = render.heatmap(relevance, True)
        buffer = io.BytesIO()
        render.grid(display, [render.Panel("lrp", heat, True, render.scale(relevance), "bwr")],
                    buffer, title="x")
        return buffer.getvalue()

    alone = [draw(r) for r in jobs]
    together = []
    with outputs.BackgroundWriter(workers=6) as writer:
        for r in jobs:
            writer.submit(draw, r, then=together.append)
    assert together == alone
    assert Image.open(io.BytesIO(alone[0])).format == "PNG"
