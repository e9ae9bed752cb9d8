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
	$(PYTHON) -m pyflakes xai_cli tests scripts

sample:
	.venv/bin/xai explain models/digits.keras sample_images/ --labels models/digits_labels.txt \
	    -m lrp -m sa --grid --out out/

bench:
	.venv/bin/xai bench --arch vgg16 --input-size 64 --batch-size 16 -m lrp -m sa -r lrp-epsilon -r epsilon-gamma-box
	.venv/bin/xai bench --arch resnet50 --input-size 64 --batch-size 16 -m lrp -m sa -r lrp-epsilon -r epsilon-gamma-box
