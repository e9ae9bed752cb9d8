"""Throughput of `xai explain` locally and on a Ray cluster of this machine, and what bounds it.

Made-up photos (the noise pictures of `xai bench`, JPEG and PNG of a photo's size) are
explained with MODEL and with a trivial model (one small convolution: what decoding,
rendering and writing allow at most), locally and with --ray on 1 and 2 actors, and
decoded by the pipeline's decoding tasks alone. Each is run on N and on 2N inputs and
the rate is the marginal one, N / (time(2N) - time(N)): start-up (Ray's workers, the
actors' TensorFlow import and compilation) is left out, as it is from a long job.

    python scripts/ray_throughput.py --model models/efficientnet_lite0.keras --inputs 64

Starts a local Ray cluster of this machine's CPUs (`ray start --head`) and stops it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

XAI = [sys.executable, "-m", "xai_cli"]
RAY = str(Path(sys.executable).parent / "ray")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", type=int, default=64, help="N: runs on N and 2N inputs")
    parser.add_argument("--method", default="lrp")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        trivial, folders = _inputs(args.model, root, args.inputs)
        address = _start_ray()
        try:
            rows = []
            for name, model in (("trivial model", trivial), (Path(args.model).stem, args.model)):
                for actors in [None, *args.actors]:
                    seconds = {n: _explain(model, folder, args, actors, address, root / "out")
                               for n, folder in folders.items()}
                    rows.append((name, "local" if actors is None else f"ray, {actors} actor"
                                 + "s" * (actors > 1), seconds))
                    print(_row(*rows[-1], args.inputs), flush=True)
            seconds = {n: _decode_only(args.model, folder, address, args.batch_size)
                       for n, folder in folders.items()}
            rows.append(("none (decoding only)", "ray decoding tasks", seconds))
            print(_row(*rows[-1], args.inputs), flush=True)
        finally:
            subprocess.run([RAY, "stop", "--force"], capture_output=True, check=False)
    print(f"\n| model | run | inputs/s (marginal) | seconds for {2 * args.inputs} |")
    print("|---|---|---|---|")
    for row in rows:
        print(_row(*row, args.inputs))


def _inputs(model: str, root: Path, count: int) -> tuple[Path, dict[int, Path]]:
    """The trivial model and folders of ``count`` and ``2 * count`` noise photos."""
    from xai_cli import kinds
    from xai_cli.engine.graph import build_graph
    from xai_cli.models.loading import load
    made = kinds.of(build_graph(load(model))).bench_files(root, 2 * count)
    trivial, images, _ = made
    half = root / "half"
    half.mkdir()
    for path in sorted(images.iterdir())[:count]:
        shutil.copy(path, half / path.name)
    return trivial, {count: half, 2 * count: images}


def _start_ray() -> str:
    """A cluster of this machine's CPUs; the commands join it as ``--ray=auto``."""
    subprocess.run([RAY, "start", "--head", f"--num-cpus={os.cpu_count()}",
                    "--include-dashboard=false", "--disable-usage-stats"],
                   capture_output=True, text=True, check=True)
    return "auto"


def _explain(model, folder, args, actors, address, out) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [*XAI, "explain", str(model), str(folder), "-m", args.method,
               "-b", str(args.batch_size), "-o", str(out)]
    if actors is not None:
        command += ["--ray-actors", str(actors), f"--ray={address}"]
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _decode_only(model: str, folder: Path, address: str, batch_size: int) -> float:
    """The pipeline's decoding stage over ``folder``, as `xai explain --ray` runs it."""
    code = f"""
import time, ray
from xai_cli.engine import backends
backends.start()
from xai_cli.jobs import on_ray
from xai_cli.session import Options, open_session
session = open_session(Options({model!r}, ({str(folder)!r},), batch_size={batch_size}))
ray.init(address={address!r}, log_to_driver=False)
rows = [{{"window": on_ray._packed(w)}} for w in session.windows()]
start = time.perf_counter()
done = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
    on_ray._decode, batch_size=1, fn_kwargs={{"decoder": session.kind.decoder(), "folder": "."}})
done.materialize()
print(time.perf_counter() - start)
"""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _row(model: str, run: str, seconds: dict[int, float], count: int) -> str:
    marginal = seconds[2 * count] - seconds[count]
    rate = f"{count / marginal:.1f}" if marginal > 0 else "n/a"
    return f"| {model} | {run} | {rate} | {seconds[2 * count]:.1f} |"


if __name__ == "__main__":
    main()
