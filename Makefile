# Set-up, demo and tests. Each target creates .venv on first use.
# CPU torch is installed first so nothing pulls the multi-GB CUDA build; on a
# machine without a local torch wheel, pass the CPU index:
#   make test TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
# The set-up also installs headless Chromium for the report's browser test when it can
# (.ci/install-browser; never fails the set-up, the test skips without a browser).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_INDEX ?=
DEMO_DATA := data/synth2017
# Two pytest workers: the suite is CPU-bound and the development machine has 2 cores; each
# test file runs whole on one worker (its module fixtures, e.g. one Ray submit, are built once).
TEST_WORKERS ?= 2
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: demo test lint install clean-demo

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml .ci/install-browser
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e '.[test,mlflow,export,docs]'
	bash .ci/install-browser
	touch $(STAMP)

demo: $(STAMP)
	test -f $(DEMO_DATA)/REFERENCE.csv || $(BIN)/python -m orchestrator data synth --out $(DEMO_DATA) --records 300 --seed 0
	$(BIN)/python -m orchestrator submit jobs/demo.json
	$(BIN)/summarize CNN --plot
	$(BIN)/summarize CRNN --plot
	$(BIN)/python -m orchestrator compare CNN/demo_cnn CRNN/demo_crnn
	$(BIN)/python -m orchestrator report CNN/demo_cnn CRNN/demo_crnn --out log/report.html

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

clean-demo:
	rm -rf log/CNN/demo_* log/CRNN/demo_* $(DEMO_DATA)
