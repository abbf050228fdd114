# genadapt-serve in a container. `make image` builds it with docker, or with podman where no
# Docker engine runs; CI builds it and smoke-tests it (`make image-smoke`).
#
#   CPU (default):   docker build -t genadapt .
#   CUDA/TensorRT:   docker build -t genadapt:gpu \
#                      --build-arg BASE=nvcr.io/nvidia/tensorrt:24.10-py3 \
#                      --build-arg TORCH="torch --index-url https://download.pytorch.org/whl/cu126" \
#                      --build-arg EXTRAS=gpu --build-arg DEVICE=cuda .
#     The base's CUDA major version (12 in 24.10) must be the one PyTorch and onnxruntime-gpu
#     were built for: hence the cu126 index rather than PyPI's default torch, which is built
#     for CUDA 13. DEVICE=cuda makes the service refuse to start on the CPU, so a container
#     run without `--gpus all` says so instead of quietly running ten times slower.
#   run:             docker run --rm -p 8000:8000 -v $PWD/export:/models:ro \
#                      -e GENADAPT_MODEL=/models/model.labels.onnx genadapt
#                    (add --gpus all for the GPU image)
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
# Exactly one ONNX Runtime: `cpu` installs onnxruntime, `gpu` onnxruntime-gpu (and TensorRT).
ARG EXTRAS="cpu"
ARG DEVICE="auto"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GENADAPT_HOST=0.0.0.0 GENADAPT_PORT=8000 GENADAPT_DEVICE=${DEVICE}

WORKDIR /app
# Every folder that pyproject maps to a package; tests/test_packaging.py builds a wheel from
# exactly these lines, so a folder left out here fails there.
COPY pyproject.toml README.md ./
COPY genadapt ./genadapt
COPY trainer ./trainer
COPY export ./export
COPY serve ./serve
COPY benchmarks ./benchmarks
RUN pip install ${TORCH} && pip install ".[${EXTRAS}]" && rm -rf build *.egg-info

RUN useradd --create-home --uid 10001 genadapt
USER genadapt
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# The model comes from a volume, named by GENADAPT_MODEL (or as the first argument).
ENTRYPOINT ["genadapt-serve"]
