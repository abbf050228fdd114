#!/usr/bin/env bash
# Every GPU path in one command, on a machine with CUDA PyTorch (a stock CUDA PyTorch image):
#   benchmarks/gpu_check.sh WHEELS OUT
# WHEELS holds what that image lacks: `make gpu-wheels` packs it on a machine with pip's index
# (benchmarks/gpu-requirements.txt and genadapt's own wheel). What is too big to carry in one
# piece arrives split as NAME.part-aa, -ab, … with NAME.sha256: it is joined and checked here,
# and a joined NAME.tar is unpacked into WHEELS. The packages go to a folder of their own,
# first on PYTHONPATH, so the image's CPU onnxruntime cannot shadow onnxruntime-gpu. OUT gets
# console.log, gpu-check.log, checks.json, targets.json and gpu-check.tar.gz (the reports);
# the check goes on past a failing part. Arguments after OUT go to `genadapt-bench gpu-check`.
set -uo pipefail
wheels="${1:?usage: benchmarks/gpu_check.sh WHEELS OUT}"
out="${2:?usage: benchmarks/gpu_check.sh WHEELS OUT}"
site="${GENADAPT_SITE:-/tmp/genadapt-site}"
mkdir -p "$out"

for first in "$wheels"/*.part-aa; do
  [ -e "$first" ] || continue
  whole="${first%.part-aa}"
  cat "$whole".part-* >"$whole"
  if [ -f "$whole.sha256" ]; then
    (cd "$(dirname "$whole")" && sha256sum --check --quiet "$(basename "$whole").sha256") ||
      { echo "gpu_check: $whole does not match its sha256" >&2; exit 1; }
  fi
  rm -f "$whole".part-*
  case "$whole" in
    *.tar) tar -xf "$whole" -C "$wheels" && rm "$whole" ||
      { echo "gpu_check: unpacking $whole failed" >&2; exit 1; } ;;
  esac
done
# One failing wheel skips only what needs it: the others are installed one by one, and the
# checks that lack a package report it (the PyTorch-only checks still run).
if ! python3 -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target "$site" \
    "$wheels"/*.whl; then
  echo "gpu_check: installing every wheel at once failed; installing them one by one" >&2
  for wheel in "$wheels"/*.whl; do
    python3 -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target "$site" \
      "$wheel" || echo "gpu_check: $wheel did not install; the checks that need it will say so" >&2
  done
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Run from the output folder: `python -m` puts the working directory first on sys.path, and
# from a checkout its genadapt/ source folder (which lacks genadapt.benchmarks) would shadow
# the installed package.
out="$(cd "$out" && pwd)"
cd "$out" || exit 1
python3 -m genadapt.benchmarks.cli gpu-check --out "$out" "${@:3}" 2>&1 | tee "$out/console.log"
exit "${PIPESTATUS[0]}"
