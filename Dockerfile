# genadapt-serve in a container.
#   CPU (default):   docker build -t genadapt .
#   CUDA/TensorRT:   docker build -t genadapt:gpu --build-arg BASE=nvcr.io/nvidia/tensorrt:24.10-py3 \
#                      --build-arg TORCH="torch" --build-arg EXTRAS="gpu" .
#   run:             docker run -p 8000:8000 -v $PWD/export:/models:ro \
#                      -e GENADAPT_MODEL=/models/model.labels.onnx genadapt
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GENADAPT_HOST=0.0.0.0 GENADAPT_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY genadapt ./genadapt
COPY trainer ./trainer
COPY export ./export
COPY serve ./serve
RUN pip install ${TORCH} && pip install ".${EXTRAS:+[$EXTRAS]}"

RUN useradd --create-home --uid 10001 genadapt
USER genadapt
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# The model comes from a volume, named by GENADAPT_MODEL (or as the first argument).
ENTRYPOINT ["genadapt-serve"]
