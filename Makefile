# make setup: .venv with everything a desktop needs (quick when already done)
# make demo:  train pilotnet on the procedural road and a digits classifier, export both, run the runtime,
#             and let pilotnet drive the road in closed loop
# make test:  the test suite
# make test-board: the runtime's own tests (tests/runtime/), which need no TensorFlow and never run setup:
#             on a board, PYTHON_BOARD=/path/to/venv/bin/python make test-board (BOARD_JOBS=N workers; 0: in
#             one process)
# SYSTEM_SITE_PACKAGES=1: a venv that sees the system's OpenCV (GStreamer-enabled) and TensorRT, as on a
# Jetson; then no pip OpenCV, and numpy stays below 2 because those are built against numpy 1.x.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTHON_BOARD ?= $(PY)
# test-board runs its test files on this many workers (pytest-xdist, in the test extra): the cores, at most 4
# (each worker holds a runtime and its ONNX Runtime; a 4 GB Nano has no room for more)
BOARD_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-board bench lint clean

setup: $(STAMP)

ifdef SYSTEM_SITE_PACKAGES
VENV_FLAGS := --system-site-packages
EXTRAS := ort,web,vehicle,train,test,lint
PINS := "numpy<2"
else
EXTRAS := ort,web,vehicle,opencv,train,test,lint
endif

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]" $(PINS)
	touch $(STAMP)

demo: setup
	$(PY) -m train --model pilotnet --data road --out runs/pilotnet --force
	$(PY) -m export onnx runs/pilotnet --out bundles/pilotnet
	$(PY) -m export variants bundles/pilotnet --calib-data road
	mkdir -p runs/demo
	$(PY) -m runtime run bundles/pilotnet --source synthetic://road --max-frames 300 --no-display \
		--output runs/demo/road.mp4 --jsonl runs/demo/road.jsonl
	$(PY) -m runtime drive bundles/pilotnet --seconds 60 --output runs/demo/drive.mp4 --plot runs/demo/drive.png
	$(PY) -m train --model mnist_cnn --data digits --epochs 5 --out runs/digits --force
	$(PY) -m export onnx runs/digits --out bundles/digits
	$(PY) -m runtime run bundles/digits --source bundles/digits/samples --no-display \
		--jsonl runs/demo/digits.jsonl
	@echo
	@echo "Training plots:  runs/pilotnet/training.png  runs/digits/training.png"
	@echo "Bundles:         bundles/pilotnet  bundles/digits  (python -m runtime info BUNDLE)"
	@echo "On a Jetson:     python -m runtime engine bundles/pilotnet; python -m export verify bundles/pilotnet"
	@echo "Annotated video: runs/demo/road.mp4"
	@echo "Closed loop:     runs/demo/drive.mp4  runs/demo/drive.png  (python -m runtime drive bundles/pilotnet --compare)"
	@echo "JSON lines:      runs/demo/road.jsonl  runs/demo/digits.jsonl"

test: setup
	$(PY) -m pytest -q

test-board:  ## no `setup` dependency: the interpreter given is used as it is
	@"$(PYTHON_BOARD)" -c "import pytest, hypothesis" 2>/dev/null || { echo "make test-board: $(PYTHON_BOARD) has \
	no pytest or hypothesis: $(PYTHON_BOARD) -m pip install -e '.[test]' (jetson_setup.sh installs them)" >&2; exit 2; }
	"$(PYTHON_BOARD)" -m pytest -q $$("$(PYTHON_BOARD)" -c "import xdist" 2>/dev/null && \
	    echo "-n $(BOARD_JOBS) --dist loadfile") tests/runtime

bench: setup   ## by hand: the README's performance table (minutes; not part of make test)
	$(PY) benchmarks/compare.py --out benchmarks/results

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf runs bundles
