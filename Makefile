PYTHON ?= .venv/bin/python
PIP ?= .venv/bin/pip

.PHONY: install test test-all lint bench sample

install:
	python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev,spray]'

test:
	$(PYTHON) -m pytest -q -m "not slow"

test-all:
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check .

sample:
	.venv/bin/xai explain models/efficientnet_lite0.keras sample_images/photos \
	    --labels imagenet -m lrp -m gradxinput --grid --out out/photos/
	.venv/bin/xai explain models/digits.keras "sample_images/digit_*.png" --labels models/digits_labels.txt \
	    -m lrp -m sa --grid --out out/digits/

BENCH = .venv/bin/xai bench -m lrp -m sa -r lrp-epsilon -r epsilon-gamma-box

bench:
	$(BENCH) --arch vgg16 --input-size 64 --batch-size 16
	$(BENCH) --arch resnet50 --input-size 64 --batch-size 16
	@if $(PYTHON) -c "import sys, tensorflow as tf; sys.exit(not tf.config.list_physical_devices('GPU'))" 2>/dev/null; then \
	    $(BENCH) --arch vgg16 --input-size 224 --batch-size 32 --xla; \
	    $(BENCH) --arch resnet50 --input-size 224 --batch-size 32 --xla; \
	fi
