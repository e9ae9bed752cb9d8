PYTHON ?= .venv/bin/python
PIP ?= .venv/bin/pip

.PHONY: install install-backends test test-all lint bench sample

install:
	python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev,spray,video,surrogates,ray]'

# the tests marked `backends` (rules, oracle, layers, loading, a killed job's resume) run again
# on every other Keras backend that is installed (make install-backends)
BACKENDS = jax torch

test:
	$(PYTHON) -m pytest -q -m "not slow"
	@for backend in $(BACKENDS); do \
	    if $(PYTHON) -c "import $$backend" 2>/dev/null; then \
	        echo "== KERAS_BACKEND=$$backend"; \
	        KERAS_BACKEND=$$backend $(PYTHON) -m pytest -q -m "backends and not slow" || exit 1; \
	    else \
	        echo "== $$backend is not installed: its tests do not run (make install-backends)"; \
	    fi; \
	done

# the CPU builds of JAX and PyTorch ('xai[jax]' and 'xai[torch]' install whatever builds pip picks)
TORCH_CPU ?= torch==2.13.0+cpu

install-backends:
	$(PIP) install --quiet 'jax[cpu]>=0.4.30' '$(TORCH_CPU)'

test-all:
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check .

sample:
	.venv/bin/xai explain models/efficientnet_lite0.keras sample_images/photos \
	    --labels imagenet -m lrp -m gradxinput --grid --out out/photos/
	.venv/bin/xai explain models/digits.keras "sample_images/digit_*.png" --labels models/digits_labels.txt \
	    -m lrp -m sa --grid --out out/digits/
	.venv/bin/xai explain models/text_lstm.keras sample_texts --labels models/text_labels.txt \
	    -m lrp -m sa --out out/text/
	.venv/bin/xai explain models/digits_vit.keras "sample_images/digit_*.png" \
	    --labels models/digits_labels.txt -r attnlrp -m lrp -m gradxinput --grid --out out/vit/
	.venv/bin/xai explain models/text_transformer.keras sample_texts --labels models/text_labels.txt \
	    -r attnlrp -m lrp -m rollout --out out/text-transformer/
	.venv/bin/xai explain models/motion_c3d.keras sample_clips --labels models/motion_labels.txt \
	    -m lrp -m sa -m gradxinput --out out/video/
	.venv/bin/xai explain models/gunpoint_cnn.keras "sample_signals/*.csv" \
	    --labels models/gunpoint_labels.txt -m lrp -m sa --out out/signals/

BENCH = .venv/bin/xai bench -m lrp -m sa -r lrp-epsilon -r epsilon-gamma-box

bench:
	$(BENCH) --arch vgg16 --input-size 64 --batch-size 16
	$(BENCH) --arch resnet50 --input-size 64 --batch-size 16
	@if $(PYTHON) -c "import sys, tensorflow as tf; sys.exit(not tf.config.list_physical_devices('GPU'))" 2>/dev/null; then \
	    $(BENCH) --arch vgg16 --input-size 224 --batch-size 32 --xla; \
	    $(BENCH) --arch resnet50 --input-size 224 --batch-size 32 --xla; \
	fi
