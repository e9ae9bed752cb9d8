#!/usr/bin/env bash
# The GPU figures of docs/performance.md, as one command on a machine with an NVIDIA GPU,
# JAX and PyTorch (with CUDA), and no network: the wheels xai needs besides travel in .whl/.
#
#   scripts/gpu_check.sh --fetch          # here, with pip's index: keras, namex, optree into .whl/
#   scripts/gpu_check.sh [OUT [PART]]     # there: install, then PART (default all):
#       1    oracle tests on JAX and PyTorch; VGG16 and ResNet50 benches at batch 64 (also
#            with autodiff VJPs), PyTorch's VGG16
#       2    VGG16 at batch 256, EfficientNet-Lite0, end to end on 2,000 JPEGs
#
# The device tool runs a command for at most 10 minutes: run part 1, then part 2, with .whl
# carried (`scripts/gpu_check.sh $OUT 1`). GPU_CHECK_QUICK=1 runs every step small (64x64,
# few images): what the steps were tested with on the CPU. Each step's output goes to OUT
# (default ./gpu-check); a failed step is reported and the next one runs; a table of
# images/s ends the run.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=${XAI_WHEELS:-.whl}

if [ "${1:-}" = "--fetch" ]; then
    # the versions this project is tested with, for Python 3.12 (the GPU machine's)
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHEELS" keras==3.15.1 namex==0.1.0 optree==0.20.0
    ls -l "$WHEELS"
    exit
fi

OUT=${1:-gpu-check}
PART=${2:-all}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
SITE=${XAI_SITE:-/tmp/xai-site}
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
    SIZE=64 BATCH=4 BIG=8 PHOTOS=16 REPEATS=2
else
    SIZE=224 BATCH=64 BIG=256 PHOTOS=2000 REPEATS=10
fi
export PYTHONUNBUFFERED=1

step() {   # step NAME COMMAND...: run it, its output to OUT/NAME.txt, and say how it ended
    local name=$1; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" > "$OUT/$name.txt" 2>&1
    local status=$?
    tail -n 5 "$OUT/$name.txt"
    echo "== $name: exit $status after $((SECONDS - start)) s"
}

bench() {   # bench BACKEND NAME ARGS...: images/s of the forward pass, gradient and methods
    local backend=$1 name=$2; shift 2
    step "bench-$backend-$name" env KERAS_BACKEND="$backend" "${XAI[@]}" bench --no-end-to-end \
        --repeats "$REPEATS" --json "$@"
}

end_to_end() {   # decode PHOTOS JPEGs, explain them with the default rules on JAX, write PNGs
    "$PY" - "$OUT/photos" "$PHOTOS" <<'PYTHON'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

folder, count = Path(sys.argv[1]), int(sys.argv[2])
folder.mkdir(exist_ok=True)
base = np.random.default_rng(0).integers(0, 256, (375, 500, 3), np.uint8)
for i in range(count):   # photo-sized JPEGs, each a little different
    Image.fromarray(np.roll(base, i, axis=1)).save(folder / f"{i:05d}.jpg", quality=90)
PYTHON
    step end-to-end-jax bash -c "time KERAS_BACKEND=jax ${XAI[*]@Q} explain \
        models/efficientnet_lite0.keras $OUT/photos -m lrp -b $BATCH --out $OUT/explained > /dev/null"
    echo "heatmaps written: $(find "$OUT/explained" -name '*.lrp.png' | wc -l) of $PHOTOS"
    rm -rf "$OUT/photos" "$OUT/explained"
}

summary() {   # the benches' figures as one table
    "$PY" - "$OUT" <<'PYTHON'
import json
import sys
from pathlib import Path

print(f"{'bench':22s} {'method':26s} {'images/s':>9s} {'x forward':>9s} {'x gradient':>10s}")
for path in sorted(Path(sys.argv[1]).glob("bench-*.txt")):
    line = next((l for l in path.read_text().splitlines() if l.startswith("{")), None)
    if line is None:
        print(f"{path.stem:22s} no figures: see {path.name}")
        continue
    result = json.loads(line)
    for name, f in result["methods"].items():
        print(f"{path.stem:22s} {name:26s} {f['images_per_s']:9.1f} {f['ratio_to_forward']:9.2f} "
              f"{f['ratio_to_gradient']:10.2f}")
    print(f"{'':22s} {result['backend']} on {result['device']}, batch {result['batch_size']}, "
          f"peak memory {result['peak_memory_mb']} MB")
PYTHON
}

if ls "$WHEELS"/*.whl > /dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl || exit 1
fi
# xai itself, built with the machine's setuptools (there is no index to fetch one from)
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade \
    --target "$SITE" . || exit 1
export PYTHONPATH=$SITE
export PYTHONSAFEPATH=1   # xai_cli from $SITE, not the source tree (which lacks xai_cli.configs)
XAI=("$PY" -c "from xai_cli.cli import main; main()")

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
for backend in jax torch; do
    KERAS_BACKEND=$backend "$PY" -c "from xai_cli.engine import backends; \
        backends.start(); print(backends.runs_on())"
done

RULES=(-m lrp -r lrp-epsilon -r epsilon-gamma-box)
if [ "$PART" = 1 ] || [ "$PART" = all ]; then
    for backend in jax torch; do   # exact on the GPU too
        step "oracle-$backend" env KERAS_BACKEND=$backend "$PY" -m pytest -q -p no:cacheprovider \
            tests/engine/test_oracle.py tests/engine/test_numpy_reference.py
    done
    # --autodiff: also with JAX's own VJPs in place of the transposed-kernel maps, which
    # were chosen on TensorFlow's CPU kernels: which to use on the GPU is measured here
    bench jax vgg16 "${RULES[@]}" --arch vgg16 --input-size "$SIZE" -b "$BATCH" --autodiff
    bench jax resnet50 "${RULES[@]}" --arch resnet50 --input-size "$SIZE" -b "$BATCH" --autodiff
    bench torch vgg16 "${RULES[@]}" --arch vgg16 --input-size "$SIZE" -b "$BATCH"
fi
if [ "$PART" = 2 ] || [ "$PART" = all ]; then
    bench jax vgg16-big "${RULES[@]}" --arch vgg16 --input-size "$SIZE" -b "$BIG"
    bench jax lite0 -m lrp -r context-gamma-box -r lrp-epsilon models/efficientnet_lite0.keras \
        -b "$BATCH"
    bench jax lite0-big -m lrp -r context-gamma-box models/efficientnet_lite0.keras -b "$BIG"
    end_to_end
fi
summary
