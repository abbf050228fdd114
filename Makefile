# Two commands on a fresh machine: `make demo` (the main job, end to end) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The CPU build of PyTorch; on a CUDA machine run e.g. `make setup TORCH=torch` to take pip's default.
TORCH ?= torch==2.13.0

# The demo: built-in scenes → source-only and adapted models → evaluation → ONNX export with its
# parity gate → one image through the HTTP service → a results table. 8½ to 11½ minutes on 2 cores.
OUT ?= demo-out
DEMO_PRESET ?= cpu-demo
DEMO_SEED ?= 1
DEMO_PORT ?= 8765
# The README's results: ten seeds of each model at a larger preset, then the paper's Table 4
# ablation on the same data; runs two at a time, and a rerun picks up where it stopped.
RESULTS ?= results-out
RESULTS_PRESET ?= cpu-small
SEEDS ?= 1 2 3 4 5 6 7 8 9 10
ABLATION_SEEDS ?= 1 2 3 4 5
JOBS ?= 2
SWEEP = $(BIN)/genadapt-sweep --jobs $(JOBS)
# Choosing the CPU presets' settings on a fourth look (never the reported target or unseen).
TUNE ?= tune-out
TUNE_PRESET ?= cpu-demo
TUNE_SEEDS ?= 1 2 3
TUNE_CANDIDATES ?= $(sort $(wildcard docs/tuning/candidates/*.yaml))
TUNE_BASELINES ?= $(sort $(wildcard docs/tuning/baselines/*.yaml))
# A candidate that deploys a moving average is compared with source-only averaged the same way.
TUNE_PAIRS ?= weak-ema=source-only-ema weak-warmup-ema=source-only-ema \
  long-warmup=source-only-1300 warmup-600=source-only-1300

# The container image: docker where a Docker engine answers, else podman with a throwaway store.
IMAGE ?= genadapt:latest
CONTAINER ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo image/podman)
IMAGE_BUILD_ARGS ?=

.PHONY: setup test lint docs results-tables demo demo-docs results ablation results-docs tune clean image image-smoke gpu-wheels gpu-genadapt-wheel

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[cpu,dev]"
	# A real Triton server for the tests and genadapt-triton serve: the wheel's tritonserver
	# binary and Python backend only (its own Python package pins NumPy 1, which is not used).
	$(PY) -m pip install --quiet --no-deps "nvidia-pytriton==0.7.0"
	touch $@

test: setup
	$(PY) -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrite the results tables of the README and the docs from the committed result files.
results-tables: setup
	$(PY) docs/hooks/results_blocks.py

# The documentation site in site/ (open site/index.html); --strict fails on a broken link.
docs: setup
	$(BIN)/mkdocs build --strict --quiet

# train DIR PRESET VARIANT SEED DATA: one run folder, then its evaluation on target and unseen.
define train_and_eval
	$(BIN)/genadapt-train --preset $(2) --variant $(3) --seed $(4) \
	  --source-root $(5)/source --target-root $(5)/target --out $(1)
	$(BIN)/genadapt-eval $(1)/checkpoint.pt --dataset cityscapes --root $(5)/target \
	  --split val --name target --out $(1)/eval
	$(BIN)/genadapt-eval $(1)/checkpoint.pt --dataset cityscapes --root $(5)/unseen \
	  --split val --name unseen --out $(1)/eval
endef

demo: setup
	rm -rf $(OUT)
	$(BIN)/genadapt-data scenes --out $(OUT)/data --size 512x256 --source 400 \
	  --target-train 400 --target-val 60 --unseen 60
	$(call train_and_eval,$(OUT)/runs/source-only,$(DEMO_PRESET),source-only,$(DEMO_SEED),$(OUT)/data)
	$(call train_and_eval,$(OUT)/runs/adapted,$(DEMO_PRESET),full,$(DEMO_SEED),$(OUT)/data)
	$(BIN)/genadapt-export $(OUT)/runs/adapted/checkpoint.pt --out $(OUT)/export
	$(BIN)/genadapt-serve $(OUT)/export/model.labels.onnx --port $(DEMO_PORT) & \
	  server=$$!; trap "kill $$server 2>/dev/null" EXIT; \
	  $(BIN)/genadapt-client http://127.0.0.1:$(DEMO_PORT) \
	    $(OUT)/data/target/leftImg8bit/val/synthtown/synthtown_000000_000019_leftImg8bit.png \
	    --out $(OUT)/served
	$(BIN)/genadapt-eval table --out $(OUT)/results.md \
	  source-only:target=$(OUT)/runs/source-only/eval/target.json \
	  source-only:unseen=$(OUT)/runs/source-only/eval/unseen.json \
	  adapted:target=$(OUT)/runs/adapted/eval/target.json \
	  adapted:unseen=$(OUT)/runs/adapted/eval/unseen.json
	@echo "Everything is in $(OUT)/: data, runs (curves.png, checkpoints), export, served, results.md"

results: setup
	test -f $(RESULTS)/data/manifest.json || $(BIN)/genadapt-data scenes --out $(RESULTS)/data \
	  --size 512x256 --source 600 --target-train 600 --target-val 100 --unseen 100
	$(SWEEP) --data $(RESULTS)/data --out $(RESULTS) --preset $(RESULTS_PRESET) \
	  --run source-only=source-only --run adapted=full --seeds $(SEEDS) --eval target unseen \
	  --summary results-summary
	$(BIN)/genadapt-eval retrieval $(RESULTS)/source-only-1/checkpoint.pt \
	  $(RESULTS)/adapted-1/checkpoint.pt --source-dataset gta5 \
	  --source-root $(RESULTS)/data/source --target-dataset cityscapes \
	  --target-root $(RESULTS)/data/target --out $(RESULTS)/retrieval
	$(BIN)/genadapt-eval table --out $(RESULTS)/results.md \
	  $(foreach seed,$(SEEDS),$(foreach m,source-only adapted,$(foreach d,target unseen,\
	    $(m):$(d)=$(RESULTS)/$(m)-$(seed)/eval/$(d).json)))

# Table 4 on the built-in shift: the three ablations beside `make results`' two models.
ablation: setup
	test -f $(RESULTS)/data/manifest.json || $(BIN)/genadapt-data scenes --out $(RESULTS)/data \
	  --size 512x256 --source 600 --target-train 600 --target-val 100 --unseen 100
	$(SWEEP) --data $(RESULTS)/data --out $(RESULTS) --preset $(RESULTS_PRESET) \
	  --run source-only=source-only --run feature-d=feature-d --run global-d=global-d \
	  --run no-aux=no-aux --run adapted=full --seeds $(ABLATION_SEEDS) --eval target unseen \
	  --summary ablation --orderings

# Copy a demo's evaluation reports into docs/results/demo/seed-N/ (committed; the README's demo
# table is rendered from them).
demo-docs:
	mkdir -p $(DOCS_RESULTS)/demo/seed-$(DEMO_SEED)
	for m in source-only adapted; do for look in target unseen; do \
	  cp $(OUT)/runs/$$m/eval/$$look.json $(DOCS_RESULTS)/demo/seed-$(DEMO_SEED)/$$m-$$look.json; \
	done; done

# Copy the reports of `make results` and `make ablation` into docs/results/ (committed).
DOCS_RESULTS ?= docs/results
results-docs:
	mkdir -p $(DOCS_RESULTS)
	for run in $(RESULTS)/*-[0-9]*/; do name=$$(basename $$run); \
	  for look in target unseen; do test -f $$run/eval/$$look.json && \
	    cp $$run/eval/$$look.json $(DOCS_RESULTS)/$$name-$$look.json; done; \
	  case $$name in *-1) cp $$run/curves.png $(DOCS_RESULTS)/curves-$$name.png;; esac; \
	done; true
	cp $(RESULTS)/data/manifest.json $(DOCS_RESULTS)/data-manifest.json
	cp $(RESULTS)/results.md $(RESULTS)/results-summary.* $(RESULTS)/retrieval/retrieval.json \
	  $(RESULTS)/retrieval/retrieval.png $(DOCS_RESULTS)/
	test ! -f $(RESULTS)/ablation.md || cp $(RESULTS)/ablation.* $(DOCS_RESULTS)/

tune: setup
	test -f $(TUNE)/data/manifest.json || $(BIN)/genadapt-data scenes --out $(TUNE)/data \
	  --size 512x256 --source 400 --target-train 0 --target-val 0 --unseen 0 \
	  --tune-train 400 --tune-val 60
	$(SWEEP) --data $(TUNE)/data --out $(TUNE) --preset $(TUNE_PRESET) --adapt-to tune \
	  --eval tune --seeds $(TUNE_SEEDS) --run source-only=source-only \
	  $(foreach b,$(TUNE_BASELINES),--run $(basename $(notdir $(b)))=source-only:$(b)) \
	  $(foreach c,$(TUNE_CANDIDATES),--run $(basename $(notdir $(c)))=full:$(c)) \
	  $(foreach p,$(TUNE_PAIRS),--pair $(p))

define newline


endef

image:
	$(CONTAINER) build $(IMAGE_BUILD_ARGS) -t $(IMAGE) .

# Build the image offline with podman (a debootstrap stand-in base, the local CPU torch wheel),
# run it with a model exported here, check its answers against this machine's, remove it all.
image-smoke: setup
	export GENADAPT_PODMAN_DIR=$$(mktemp -d /tmp/genadapt-podman.XXXXXX); \
	  trap 'image/podman system reset -f >/dev/null 2>&1; rm -rf "$$GENADAPT_PODMAN_DIR"' EXIT; \
	  image/build-offline localhost/genadapt:smoke && \
	  GENADAPT_IMAGE=localhost/genadapt:smoke GENADAPT_CONTAINER=image/podman \
	    $(PY) -m pytest -q -p no:cacheprovider tests/image

# The wheels benchmarks/gpu_check.sh installs on a CUDA machine that may be offline (CPython
# 3.12, x86-64): one tar of the third-party wheels in 58 MiB parts, .whl/carry/1 … N, so that a
# part and a checkout travel together under a 64 MiB transfer limit with room to spare; the
# script joins them and checks the sha256. genadapt's own wheel, rebuilt on every run of this
# target, goes with the last part, so that a fix made between two runs is in the second.
GPU_WHEELS ?= .whl
gpu-wheels: setup
	rm -rf $(GPU_WHEELS) && mkdir -p $(GPU_WHEELS)/third-party $(GPU_WHEELS)/carry
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d $(GPU_WHEELS)/third-party -r benchmarks/gpu-requirements.txt
	tar -cf $(GPU_WHEELS)/gpu-wheels.tar -C $(GPU_WHEELS)/third-party .
	cd $(GPU_WHEELS) && sha256sum gpu-wheels.tar >gpu-wheels.tar.sha256 && \
	  split -b 58m gpu-wheels.tar gpu-wheels.tar.part- && rm gpu-wheels.tar
	n=0; for part in $(GPU_WHEELS)/gpu-wheels.tar.part-*; do n=$$((n + 1)); \
	  mkdir -p $(GPU_WHEELS)/carry/$$n && mv $$part $(GPU_WHEELS)/carry/$$n/; done; \
	  mv $(GPU_WHEELS)/gpu-wheels.tar.sha256 $(GPU_WHEELS)/carry/$$n/
	$(MAKE) gpu-genadapt-wheel

# genadapt's wheel alone, into the last carry folder (after a fix, between two runs).
gpu-genadapt-wheel: setup
	last=$$(ls -d $(GPU_WHEELS)/carry/* | sort -n | tail -1) && rm -f $$last/genadapt-*.whl && \
	  $(PY) -m pip wheel --quiet --no-deps -w $$last .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
