"""The run folder: resolved config, JSONL metrics, checkpoints, resume state and loss curves.

    RUN/config.yaml     the resolved TrainConfig
    RUN/metrics.jsonl   one line per log interval ({"type": "train" | "val", "step": …})
    RUN/checkpoint.pt   F+C in the genadapt checkpoint format: what export and serve read, the
                        model selected by source-val mIoU (held-out source images, never
                        target labels), or the last one when validation is off
    RUN/resume.pt       everything needed to continue: F+C, G, D, optimizers, RNG, step
    RUN/provenance.json the commit, machine, command and date of each start (and resume)
    RUN/curves.png      losses and source-val mIoU, refreshed with each checkpoint
    RUN/reconstructions.png   what G makes of F's embedding of a source and a target image

resume.pt alone defines the state to resume from and is replaced atomically, so a run killed at
any moment continues from its last save and loses only the iterations since.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from genadapt.checkpoint import Checkpoint, save_checkpoint
from genadapt.encoding import encode_png
from genadapt.errors import GenadaptError
from genadapt.fileio import atomic_write, atomic_write_bytes, load_weights_only
from genadapt.labels import get_label_space
from genadapt.provenance import provenance
from genadapt.trainer.adapter import Adapter, Batch
from genadapt.trainer.config import TrainConfig, save_yaml

log = logging.getLogger(__name__)
RESUME_VERSION = 1


class RunError(GenadaptError):
    """A run folder that cannot be created or resumed."""


class RunFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.metrics_path = self.path / "metrics.jsonl"
        self.checkpoint_path = self.path / "checkpoint.pt"
        self.resume_path = self.path / "resume.pt"
        self.curves_path = self.path / "curves.png"
        self.provenance_path = self.path / "provenance.json"

    def create(self, config: TrainConfig) -> None:
        """Start a new run; never overwrite an earlier run's work."""
        if self.path.exists() and any(self.path.iterdir()):
            raise RunError(
                f"run folder {self.path} is not empty: continue it with --resume {self.path} "
                "or choose another --out"
            )
        atomic_write_bytes(self.config_path, save_yaml(config))

    def record_provenance(self) -> None:
        """Append this start's record (commit, machine, command, date) to provenance.json."""
        atomic_write_bytes(
            self.provenance_path, json.dumps([*self.provenance(), provenance()], indent=2).encode()
        )

    def provenance(self) -> list[dict[str, Any]]:
        """One record per start of the run, oldest first (none for runs from before them)."""
        if not self.provenance_path.is_file():
            return []
        return json.loads(self.provenance_path.read_text())

    def log(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a kill mid-write
                log.warning("ignoring a malformed line in %s", self.metrics_path)
        return records

    def truncate_metrics(self, step: int) -> None:
        """Drop records logged after `step`: the resumed run will log those steps again."""
        kept = [r for r in self.records() if r["step"] <= step]
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())

    def save_resume(self, adapter: Adapter, config: TrainConfig, step: int, metrics: dict) -> None:
        state = {
            "version": RESUME_VERSION,
            "step": step,
            "config": config.to_dict(),
            "fc": adapter.fc.state_dict(),
            "fc_ema": adapter.fc_ema.state_dict() if adapter.fc_ema is not None else None,
            "ema_updates": adapter.ema_updates,
            "G": adapter.G.state_dict() if adapter.G is not None else None,
            "D": adapter.D.state_dict() if adapter.D is not None else None,
            "optimizers": {k: opt.state_dict() for k, opt in adapter.optimizers().items()},
            "rng": {"torch": torch.get_rng_state(), "cuda": _cuda_rng_state()},
            "metrics": metrics,
        }
        atomic_write(self.resume_path, lambda f: torch.save(state, f))

    def save_checkpoint(
        self, adapter: Adapter, config: TrainConfig, step: int, metrics: dict
    ) -> None:
        checkpoint = Checkpoint.from_model(
            adapter.deployed,
            get_label_space(config.label_space),
            config.input_size,
            train_config=config.to_dict(),
            step=step,
            metrics=metrics,
        )
        save_checkpoint(checkpoint, self.checkpoint_path)

    def selected_validation(self, until: float = float("inf")) -> dict[str, Any] | None:
        """The validation record checkpoint.pt was selected at, among those logged up to
        `until`: the best source-val mIoU, ties going to the later step (the trainer's rule)."""
        vals = [
            r
            for r in self.records()
            if r["type"] == "val" and r["step"] <= until and r["miou"] == r["miou"]  # not NaN
        ]
        return max(vals, key=lambda r: (r["miou"], r["step"]), default=None)

    def best_source_val(self, until: int) -> float:
        """The score checkpoint.pt was selected with, so that a resumed run keeps selecting
        against it."""
        selected = self.selected_validation(until)
        return selected["miou"] if selected else float("-inf")

    def check_resumable(self) -> None:
        if not self.resume_path.is_file():
            raise RunError(f"nothing to resume in {self.path}: no resume.pt (no checkpoint yet)")

    def load_resume(self) -> dict[str, Any]:
        self.check_resumable()
        state = load_weights_only(self.resume_path, RunError)
        if not isinstance(state, dict) or state.get("version") != RESUME_VERSION:
            raise RunError(f"{self.resume_path} is not a version {RESUME_VERSION} resume file")
        return state

    def save_reconstructions(self, adapter: Adapter, batch: Batch) -> None:
        """What G makes of F's embedding: Xs | G(F(Xs)) | Xt | G(F(Xt)), one row per image."""
        if adapter.G is None or batch.xt is None:
            return
        was_training = adapter.training
        adapter.eval()
        with torch.no_grad():
            size = (batch.xs.shape[-2], batch.xs.shape[-1])
            feats = adapter.fc.embed(torch.cat([batch.xs[:1], batch.xt[:1]]))
            fake = adapter.G(feats, size).float()
        adapter.train(was_training)
        tiles = [batch.xs01[:1].float(), fake[:1], batch.xt01[:1].float(), fake[1:]]
        grid = torch.cat([t[0] for t in tiles], dim=2)  # (3, H, 4W)
        array = (grid.clamp(0, 1) * 255).byte().permute(1, 2, 0).cpu().numpy()
        atomic_write_bytes(self.path / "reconstructions.png", encode_png(array))

    def plot_curves(self) -> None:
        """Loss curves and source-val mIoU; a plotting failure never stops training."""
        try:
            _plot(self.records(), self.curves_path)
        except (ImportError, OSError, ValueError) as exc:
            log.warning("could not draw %s: %s", self.curves_path, exc)


def restore(adapter: Adapter, state: dict[str, Any]) -> int:
    """Load a resume state into the adapter; returns the step to continue from."""
    adapter.fc.load_state_dict(state["fc"])
    if adapter.fc_ema is not None:
        if state.get("fc_ema") is None:
            raise RunError("the run was started without ema_decay: it cannot resume with it")
        adapter.fc_ema.load_state_dict(state["fc_ema"])
        adapter.ema_updates = int(state["ema_updates"])
    if adapter.G is not None:
        adapter.G.load_state_dict(state["G"])
    if adapter.D is not None:
        adapter.D.load_state_dict(state["D"])
    for name, opt in adapter.optimizers().items():
        opt.load_state_dict(state["optimizers"][name])
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return int(state["step"])


def _cuda_rng_state() -> list[torch.Tensor] | None:
    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def _plot(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("type") == "train"]
    val = [r for r in records if r.get("type") == "val"]
    if not train:
        return
    loss_keys = sorted(k for k in train[-1] if k.startswith(("d_", "g_", "f_")))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for key in loss_keys:
        axes[0].plot([r["step"] for r in train], [r.get(key) for r in train], label=key)
    axes[0].set(title="losses", xlabel="iteration", yscale="log")
    axes[0].legend(fontsize=7)
    if val:
        axes[1].plot([r["step"] for r in val], [r["miou"] for r in val], marker="o")
    axes[1].set(title="source-val mIoU (%)", xlabel="iteration")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
