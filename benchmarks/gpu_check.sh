#!/usr/bin/env bash
# Every GPU path in one command, on a machine with CUDA PyTorch (a stock CUDA PyTorch image):
#   benchmarks/gpu_check.sh WHEELS OUT
# WHEELS holds what that image lacks: `make gpu-wheels` fills it on a machine with pip's index
# (benchmarks/gpu-requirements.txt and genadapt's own wheel). A wheel too big to carry in one
# piece may arrive split as NAME.whl.part-aa, -ab, … with NAME.whl.sha256: it is joined and
# checked here. The packages go to a folder of their own, first on PYTHONPATH, so the image's
# CPU onnxruntime cannot shadow onnxruntime-gpu. OUT gets gpu-check.log, checks.json and
# gpu-check.tar.gz (the reports); the check goes on past a failing part and ends within
# about 8 minutes on an H100 or H200.
set -uo pipefail
wheels="${1:?usage: benchmarks/gpu_check.sh WHEELS OUT}"
out="${2:?usage: benchmarks/gpu_check.sh WHEELS OUT}"
site="${GENADAPT_SITE:-/tmp/genadapt-site}"
mkdir -p "$out"

for first in "$wheels"/*.whl.part-aa; do
  [ -e "$first" ] || continue
  wheel="${first%.part-aa}"
  cat "$wheel".part-* >"$wheel"
  if [ -f "$wheel.sha256" ]; then
    (cd "$(dirname "$wheel")" && sha256sum --check --quiet "$(basename "$wheel").sha256") ||
      { echo "gpu_check: $wheel does not match its sha256" >&2; exit 1; }
  fi
done
python3 -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target "$site" \
  "$wheels"/*.whl || { echo "gpu_check: installing $wheels failed" >&2; exit 1; }
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -m genadapt.benchmarks.cli gpu-check --out "$out" "${@:3}" 2>&1 | tee "$out/console.log"
exit "${PIPESTATUS[0]}"
