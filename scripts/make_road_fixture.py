"""Reference values for ROAD's noisy linear imputation, made by Quantus' implementation.

The reference is ``noisy_linear_imputation`` of Quantus 0.6.0 (``quantus/functions/
perturb_func.py``, adapted there from tleemann/road_evaluation, the ROAD authors' code),
with its helper ``offset_coordinates`` (``quantus/helpers/utils.py``). Their code is not
part of this repository: unpack the wheel somewhere else and point ``--quantus`` at it:

    pip download quantus==0.6.0 --no-deps -d /tmp/quantus
    cd /tmp/quantus && unzip -q quantus-0.6.0-py3-none-any.whl
    .venv/bin/python scripts/make_road_fixture.py --quantus /tmp/quantus

Importing Quantus pulls in OpenCV and a deep-learning framework, so this script takes the
two functions' source from the files as they are (by name, with ``ast``) and runs it with
NumPy and SciPy. The noise is set to 0: the fixture checks the linear system, and the
noise is tested on its own. Images are (C, H, W) for Quantus and stored (H, W, C).
Writes ``tests/fixtures/road_quantus.npz``; not run by the tests.
"""

from __future__ import annotations

import argparse
import ast
import typing
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

CASES = [((3, 10, 12), 0.3), ((3, 10, 12), 0.8), ((1, 7, 5), 0.5), ((3, 10, 12), 0.05)]


def function_source(path: Path, name: str) -> str:
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(path.read_text(), node)


def quantus_imputation(root: Path):
    namespace = {"np": np, "lil_matrix": scipy.sparse.lil_matrix,
                 "csc_matrix": scipy.sparse.csc_matrix, "spsolve": scipy.sparse.linalg.spsolve,
                 **{name: getattr(typing, name) for name in typing.__all__}}
    exec(function_source(root / "quantus/helpers/utils.py", "offset_coordinates"), namespace)
    exec(function_source(root / "quantus/functions/perturb_func.py", "noisy_linear_imputation"),
         namespace)
    return namespace["noisy_linear_imputation"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quantus", type=Path, required=True,
                        help="folder holding the unpacked quantus/ package")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parents[1] / "tests/fixtures/road_quantus.npz")
    args = parser.parse_args()
    imputation = quantus_imputation(args.quantus)
    rng = np.random.default_rng(2026)
    arrays = {}
    for i, (shape, share) in enumerate(CASES):
        image = rng.normal(size=shape)
        removed = rng.random(shape[1:]) < share
        removed[0, 0] = True   # a corner: the renormalised border weights
        filled = imputation(image, np.flatnonzero(removed), noise=0.0)
        arrays.update({f"image_{i}": np.moveaxis(image, 0, -1), f"removed_{i}": removed,
                       f"filled_{i}": np.moveaxis(filled, 0, -1)})
    np.savez(args.out, **arrays)
    print(f"wrote {args.out}: {len(CASES)} cases, "
          f"{[int(arrays[f'removed_{i}'].sum()) for i in range(len(CASES))]} pixels removed")


if __name__ == "__main__":
    main()
