#!/usr/bin/env bash
# The GPU figures of docs/performance.md, as one command on a machine with an NVIDIA GPU,
# JAX and PyTorch (with CUDA), and no network: the wheels xai needs besides travel in .whl/.
#
#   scripts/gpu_check.sh --fetch     # here, with pip's index: keras, namex, optree into .whl/
#   scripts/gpu_check.sh [OUT]       # there: install, oracle tests on JAX and PyTorch, benches
#
# GPU_CHECK_QUICK=1 runs every step small (64x64, few images): what the steps were tested
# with on the CPU. Each step's output goes to OUT (default ./gpu-check), and a failed step
# is reported and the next one runs, so that one run gives every figure it can.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=${XAI_WHEELS:-.whl}

if [ "${1:-}" = "--fetch" ]; then
    # the versions this project is tested with; Python 3.12 (the GPU machine's)
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHEELS" keras==3.15.1 namex==0.1.0 optree==0.20.0
    ls -l "$WHEELS"
    exit
fi

OUT=${1:-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
SITE=${XAI_SITE:-/tmp/xai-site}
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
    SIZE=64 BATCH=4 BIG=8 PHOTOS=16 REPEATS=2
else
    SIZE=224 BATCH=64 BIG=256 PHOTOS=2000 REPEATS=10
fi
export PYTHONUNBUFFERED=1

step() {   # step NAME COMMAND...: run it, log to OUT/NAME.txt, say how it ended
    local name=$1; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" > "$OUT/$name.txt" 2>&1
    local status=$?
    tail -n 25 "$OUT/$name.txt"
    echo "== $name: exit $status after $((SECONDS - start)) s"
}

if ls "$WHEELS"/*.whl > /dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl || exit 1
fi
# xai itself, built with the machine's setuptools (no index to fetch a build backend from)
$PY -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade \
    --target "$SITE" . || exit 1
export PYTHONPATH=$SITE
export PYTHONSAFEPATH=1   # xai_cli from $SITE, not the source tree (which lacks xai_cli.configs)
XAI=("$PY" -c "from xai_cli.cli import main; main()")

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
for backend in jax torch; do
    KERAS_BACKEND=$backend "$PY" -c "import keras, sys; from xai_cli.engine import backends; \
        print(keras.backend.backend(), backends.runs_on())"
done

# 1. exact on the GPU: the oracle and NumPy reference tests on each backend
for backend in jax torch; do
    step "oracle-$backend" env KERAS_BACKEND=$backend "$PY" -m pytest -q -p no:cacheprovider \
        tests/engine/test_oracle.py tests/engine/test_numpy_reference.py
done

# 2. images/s: forward, gradient, LRP-epsilon, epsilon-gamma-box, on JAX (jit, XLA) and torch
bench() {   # bench BACKEND NAME ARGS...
    local backend=$1 name=$2; shift 2
    step "bench-$backend-$name" env KERAS_BACKEND=$backend "${XAI[@]}" bench --no-end-to-end \
        --repeats "$REPEATS" --json "$@"
}
RULES=(-m lrp -r lrp-epsilon -r epsilon-gamma-box)
bench jax vgg16 "${RULES[@]}" --arch vgg16 --input-size "$SIZE" -b "$BATCH"
bench jax resnet50 "${RULES[@]}" --arch resnet50 --input-size "$SIZE" -b "$BATCH"
bench jax lite0 -m lrp -r context-gamma-box -r lrp-epsilon models/efficientnet_lite0.keras -b "$BATCH"
bench jax vgg16-big "${RULES[@]}" --arch vgg16 --input-size "$SIZE" -b "$BIG"
bench jax lite0-big -m lrp -r context-gamma-box models/efficientnet_lite0.keras -b "$BIG"
bench torch vgg16 "${RULES[@]}" --arch vgg16 --input-size "$SIZE" -b "$BATCH"

# 3. end to end on JAX: decode PHOTOS JPEGs, explain with the default rules, write PNGs
"$PY" - "$OUT/photos" "$PHOTOS" <<'EOF'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
folder, count = Path(sys.argv[1]), int(sys.argv[2])
folder.mkdir(exist_ok=True)
rng = np.random.default_rng(0)
base = rng.integers(0, 256, (375, 500, 3), np.uint8)
for i in range(count):   # photo-sized JPEGs, each a little different
    Image.fromarray(np.roll(base, i, axis=1)).save(folder / f"{i:05d}.jpg", quality=90)
EOF
step end-to-end-jax bash -c "time env KERAS_BACKEND=jax ${XAI[*]@Q} explain \
    models/efficientnet_lite0.keras $OUT/photos -m lrp -b $BATCH --out $OUT/explained > /dev/null"
ls "$OUT/explained" | grep -c '\.lrp\.png$'
rm -rf "$OUT/photos" "$OUT/explained"
