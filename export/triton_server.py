"""`genadapt-triton serve REPOSITORY`: a real Triton Inference Server on a repository written by
`genadapt-export --triton`, where no NVIDIA container is at hand.

The server is the `tritonserver` binary (2.51) that the `nvidia-pytriton` wheel ships with its
Python backend, or the one GENADAPT_TRITONSERVER names. That backend runs the `genadapt-python`
model with genadapt's own runtime, on the CPU or a GPU. Its stub embeds the system's libpython
of this Python's version (Debian: libpython3.11), and finds genadapt through GENADAPT_PYTHONPATH,
set here to this environment's site folders. The ONNX Runtime and TensorRT backends are not in
the wheel: the `genadapt` model of the repository is for NVIDIA's images.
"""

from __future__ import annotations

import importlib.util
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from genadapt.errors import GenadaptError

STUB = "triton_python_backend_stub"


def find_tritonserver() -> Path:
    """GENADAPT_TRITONSERVER, or the binary inside the nvidia-pytriton wheel."""
    given = os.environ.get("GENADAPT_TRITONSERVER")
    if given:
        if not Path(given).is_file():
            raise GenadaptError(f"GENADAPT_TRITONSERVER names no file: {given}")
        return Path(given)
    spec = importlib.util.find_spec("pytriton")  # locates the package; imports nothing of it
    if spec is None or spec.origin is None:
        raise GenadaptError(
            "no tritonserver: pip install --no-deps nvidia-pytriton==0.7.0 (its binary only; "
            "`make setup` does this), or set GENADAPT_TRITONSERVER"
        )
    binary = Path(spec.origin).parent / "tritonserver" / "bin" / "tritonserver"
    if not binary.is_file():
        raise GenadaptError(f"nvidia-pytriton is installed but has no {binary}")
    return binary


def backend_directory(binary: Path, into: Path) -> Path:
    """A backends folder whose Python backend has the stub built for this Python's version.

    The wheel ships one stub per Python version beside its backend; the backend looks for
    `triton_python_backend_stub` in its own folder."""
    shipped = binary.parent.parent / "backends"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = binary.parent.parent / "python_backend_stubs" / version / STUB
    python = into / "python"
    python.mkdir(parents=True, exist_ok=True)
    for source in (*sorted((shipped / "python").iterdir()), stub):
        if source.is_file():
            target = python / source.name
            # Links, not copies: the stub finds the wheel's CUDA runtime relative to itself.
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(source.resolve())
    if not (python / STUB).is_file():
        raise GenadaptError(f"no Python-backend stub for Python {version} beside {binary}")
    _check_libpython(python / STUB, version)
    return into


def _check_libpython(stub: Path, version: str) -> None:
    try:
        linked = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return  # no ldd here: the server will say what is missing
    missing = [line for line in linked.stdout.splitlines() if "not found" in line]
    if any(f"libpython{version}.so" in line for line in missing):
        raise GenadaptError(
            f"Triton's Python backend needs the system's libpython{version} (Debian and "
            f"Ubuntu: apt-get install libpython{version})"
        )


def site_folders() -> list[str]:
    """Where this environment's packages are, genadapt's included (editable installs too)."""
    folders = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    folders += site.getsitepackages()
    return list(dict.fromkeys(f for f in folders if Path(f).is_dir()))


def serve_command(
    repository: Path, backends: Path, http_port: int, grpc_port: int, metrics_port: int
) -> list[str]:
    return [
        str(find_tritonserver()),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        f"--http-port={http_port}",
        f"--grpc-port={grpc_port}",
        f"--metrics-port={metrics_port}",
        # Only the Python-backend model: the wheel has no ONNX Runtime or TensorRT backend.
        "--model-control-mode=explicit",
        "--load-model=genadapt-python",
        "--exit-on-error=true",
    ]


def serve(
    repository: Path,
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    cache: Path | None = None,
) -> int:
    """Run the server in the foreground (this process becomes it) until it is stopped."""
    if not (repository / "genadapt-python" / "config.pbtxt").is_file():
        raise GenadaptError(
            f"{repository} has no genadapt-python model: export with genadapt-export --triton"
        )
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genadapt"
    backends = backend_directory(find_tritonserver(), cache / "triton-backends")
    command = serve_command(repository.resolve(), backends, http_port, grpc_port, metrics_port)
    env = os.environ | {"GENADAPT_PYTHONPATH": os.pathsep.join(site_folders())}
    sys.stdout.flush()
    os.execve(command[0], command, env)
    return 0  # not reached: exec replaces this process
