"""The training configuration: one flat dataclass, paper defaults, presets, YAML and flags.

Precedence: dataclass defaults < preset < YAML file < command-line flags. The resolved config is
written to the run folder and stored in every checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from genadapt.errors import GenadaptError

VARIANTS = ("full", "source-only", "feature-d", "global-d", "no-aux")
REDUCTIONS = ("sum", "mean")
AMP_MODES = ("off", "bf16")
RESIZE_RULES = ("cover", "stretch", "authors")  # datasets.Transform (a torch-free copy: asserted)
VGG_LAYOUTS = ("auto", "torchvision", "caffe")
# The loss weights each variant has no term for: it sets them to 0 (and refuses a user's other
# value, rather than overwriting it silently).
UNUSED_WEIGHTS = {
    "source-only": ("alpha", "beta"),
    "feature-d": ("alpha",),
    "no-aux": ("alpha",),
}


class ConfigError(GenadaptError):
    """An unknown key, preset or value in the training configuration."""


@dataclass
class TrainConfig:
    # Method (docs/method.md). `variant` selects the paper's ablations (Table 4).
    variant: str = "full"
    alpha: float = 0.1  # F/C step: auxiliary classification loss through G and D
    beta: float = 0.1  # F/C step: cross-domain adversarial losses
    g_aux_weight: float = 1.0  # G step: D's pixel-labeling loss on G(F(Xs))
    g_adv_weight: float = 0.1  # G step: within-domain adversarial losses
    g_recon_weight: float = 1.0  # G step: L1 reconstruction of Xs and Xt
    # How the weights above apply (docs/method.md). "sum": the authors' code, every cross entropy
    # summed over its pixels and L1 a mean, so that α and β act as 0.1 × N_D/(H·W) ≈ 0.0016 and
    # the L1 weight as 1/N_D (see `effective_weights`). "mean": every loss a per-pixel mean, so
    # the weights are what they say.
    loss_reduction: str = "sum"
    adv_ramp: int = 0  # α and β rise linearly from 0 over this many iterations (0: the authors')
    # Not in the paper; levers for a short budget from scratch (docs/tuning). source_warmup: the
    # first N iterations train F/C on the source alone (G, D and the adversarial terms start
    # after them, so the adapted and source-only models make the same number of F/C updates).
    # ema_decay > 0: the model that is validated, selected and saved as checkpoint.pt is an
    # exponential moving average of F/C's weights (Polyak averaging), not the last iterate.
    source_warmup: int = 0
    ema_decay: float = 0.0
    # d_label_smoothing > 0: D's regularisation, its four domain targets smoothed towards
    # uniform in D's own step (G's and F's adversarial targets stay hard, so only D is made less
    # confident). On a short budget D wins early and F's adversarial loss saturates.
    d_label_smoothing: float = 0.0
    # Data: the source has labels, the target's labels are never read in training.
    source_kind: str = "gta5"
    source_root: str = ""
    source_split: str = "all"
    source_val_count: int = 500  # last N source images, held out for model selection
    target_kind: str = "cityscapes"
    target_root: str = ""
    target_split: str = "train"
    label_space: str = "cityscapes19"
    size: tuple[int, int] = (1024, 512)  # (W, H) the scale training frames are brought to
    crop: tuple[int, int] | None = None  # (W, H) random crop of that; the authors' code: 640×320
    # How a training frame reaches `size` (datasets.Transform): "cover" keeps its aspect (GTA5's
    # 1914×1052 → 1024×563, then a random 1024×512 window), "stretch" squashes it to `size`,
    # "authors" is their rule (GTA5 to 1280 wide, SYNTHIA and Cityscapes at full scale), with
    # `crop`. The network is deployed and evaluated at the crop's size, or else `size`.
    resize: str = "cover"
    hflip: bool = False
    # Network F+C (G and D are scaled by the same width).
    width: float = 1.0
    padding: str = "pad100"
    vgg_weights: str = ""  # local ImageNet VGG16 state dict; empty: train F from scratch
    vgg_layout: str = "auto"  # torchvision | caffe (the input the weights expect); auto: read it
    # Optimization (docs/method.md): F/C Adam 1e-5 (biases ×2), decayed ×0.1 (lr_decay_epochs);
    # G/D Adam 1e-4.
    iterations: int = 100_000
    batch_size: int = 1
    lr_fc: float = 1e-5
    lr_fc_bias_mult: float = 2.0
    betas_fc: tuple[float, float] = (0.9, 0.999)
    lr_decay: float = 0.1
    # Every this many epochs F/C's lr is multiplied by lr_decay. An epoch is min(|source|,
    # |target|) iterations, |source| for source-only. Unset: the authors', 8 for the adapting
    # variants (Trainer_LSD) and 3 for source-only (their trainer_sourceonly).
    lr_decay_epochs: int | None = None
    lr_gd: float = 1e-4
    betas_gd: tuple[float, float] = (0.7, 0.999)
    seed: int = 1337
    # Run bookkeeping.
    log_every: int = 20
    checkpoint_every: int = 1000
    val_every: int = 1000  # source-val mIoU; 0 disables
    val_images: int = 100
    device: str = "auto"  # auto: cuda if available
    # "bf16": bf16 autocast on CUDA (ignored on CPU), a deviation from the authors' fp32 that
    # the trainer says so at start; "off": fp32 (TF32 matmuls on CUDA), as the authors trained.
    amp: str = "off"
    # On CUDA, cuDNN's benchmark picks the fastest kernels, which may differ between runs; with
    # deterministic, PyTorch's deterministic algorithms are used instead (slower), so that a
    # resumed run is bit-identical there too. On a CPU training is deterministic either way.
    deterministic: bool = False
    channels_last: bool = True  # on CUDA
    num_workers: int = 4
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.loss_reduction not in REDUCTIONS:
            raise ConfigError(
                f"loss_reduction must be one of {REDUCTIONS}, got {self.loss_reduction!r}"
            )
        self.size = _pair(self.size, "size")
        self.crop = None if self.crop in (None, "", "none") else _pair(self.crop, "crop")
        self.betas_fc = tuple(float(b) for b in self.betas_fc)
        self.betas_gd = tuple(float(b) for b in self.betas_gd)
        if self.crop and (self.crop[0] > self.size[0] or self.crop[1] > self.size[1]):
            raise ConfigError(f"crop {self.crop} is larger than the image size {self.size}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ConfigError("iterations and batch_size must be at least 1")
        if self.adv_ramp < 0:
            raise ConfigError(f"adv_ramp must be 0 or more iterations, got {self.adv_ramp}")
        if not 0 <= self.source_warmup < self.iterations:
            raise ConfigError(
                f"source_warmup must be 0 or more and below iterations ({self.iterations}), "
                f"got {self.source_warmup}: the CPU presets warm up for 30% of their iterations; "
                "give --set source_warmup=N for a shorter run"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.d_label_smoothing < 1.0:
            raise ConfigError(f"d_label_smoothing must be in [0, 1), got {self.d_label_smoothing}")
        # Configs from before amp took a name held a bool (and meant bf16 by true).
        self.amp = {"true": "bf16", "false": "off"}.get(str(self.amp).lower(), self.amp)
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.resize not in RESIZE_RULES:
            raise ConfigError(f"resize must be one of {RESIZE_RULES}, got {self.resize!r}")
        if self.resize == "authors" and self.crop is None:
            raise ConfigError("resize 'authors' trains on random crops: give --crop (e.g. 640x320)")
        if self.vgg_layout not in VGG_LAYOUTS:
            raise ConfigError(f"vgg_layout must be one of {VGG_LAYOUTS}, got {self.vgg_layout!r}")
        if self.lr_decay_epochs is None:
            self.lr_decay_epochs = 3 if self.variant == "source-only" else 8
        for name in UNUSED_WEIGHTS.get(self.variant, ()):
            setattr(self, name, 0.0)

    @property
    def input_size(self) -> tuple[int, int]:
        """(W, H) the network sees in training, which is also the size it is deployed at."""
        return self.crop or self.size

    @property
    def uses_generator(self) -> bool:
        return self.variant in ("full", "global-d", "no-aux")

    def effective_weights(self) -> dict[str, float]:
        """The weights as they act when every loss is written as a per-pixel mean (labelled
        pixels taken as all pixels): α and β against the segmentation loss, the L1 weight
        against G's mean cross-entropy terms. With "mean" they are the configured ones."""
        weights = {
            "alpha": self.alpha,
            "beta": self.beta,
            "g_aux_weight": self.g_aux_weight,
            "g_adv_weight": self.g_adv_weight,
            "g_recon_weight": self.g_recon_weight,
        }
        if self.loss_reduction == "mean":
            return weights
        from genadapt.trainer.networks import patch_grid_pixels  # torch, only when asked

        width, height = self.input_size
        n_d = patch_grid_pixels(height, width)
        # F/C step: the segmentation loss sums H·W pixels, the α and β terms N_D patches.
        weights["alpha"] *= n_d / (height * width)
        weights["beta"] *= n_d / (height * width)
        # G step: its cross entropies sum N_D patches per image, L1 is a mean over the batch.
        weights["g_recon_weight"] /= n_d * self.batch_size
        return weights

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, str):
        value = value.lower().replace("x", ",").split(",")
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be WIDTHxHEIGHT, got {value!r}") from None
    return w, h


# Named starting points. CPU presets train from scratch, so they need far higher learning rates
# than the paper's ImageNet-initialized 1e-5, and small widths and sizes to fit a CPU budget.
# Their loss weights deviate from the authors' too: with the authors' effective weights F does not
# move from source-only in 1,000 iterations. α = β = 0.03 as per-pixel means, and a source-only
# warm-up of 30% of the iterations, were chosen on the built-in tuning look, never on the reported
# ones (docs/tuning/README.md).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "paper-fast": {"padding": "pad1"},
    "cpu-tiny": {
        "loss_reduction": "mean", "size": (64, 32), "width": 0.0625, "padding": "pad1",
        "iterations": 4, "lr_fc": 1e-4,
        "source_val_count": 2, "val_images": 2, "log_every": 1, "checkpoint_every": 2,
        "val_every": 2, "num_workers": 0, "lr_decay_epochs": 1000,
    },
    "cpu-demo": {
        "loss_reduction": "mean", "alpha": 0.03, "beta": 0.03, "source_warmup": 300,
        "size": (256, 128),
        "width": 0.125, "padding": "pad1", "iterations": 1000, "lr_fc": 2e-4,
        "lr_gd": 2e-4, "source_val_count": 40, "val_images": 40, "log_every": 20,
        "checkpoint_every": 250, "val_every": 250, "num_workers": 2, "lr_decay_epochs": 1000,
    },
    "cpu-small": {
        "loss_reduction": "mean", "alpha": 0.03, "beta": 0.03, "source_warmup": 600,
        "size": (256, 128),
        "width": 0.125, "padding": "pad1", "iterations": 2000, "lr_fc": 2e-4,
        "lr_gd": 2e-4, "source_val_count": 50, "val_images": 50, "log_every": 20,
        "checkpoint_every": 250, "val_every": 250, "num_workers": 2, "lr_decay_epochs": 1000,
    },
}  # fmt: skip


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return data


def resolve_config(
    preset: str | None = None,
    yaml_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults < preset < YAML < overrides (flags); unknown keys are an error, not ignored."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    values: dict[str, Any] = dict(PRESETS.get(preset or "paper", {}))
    user: dict[str, Any] = load_yaml(yaml_path) if yaml_path else {}
    user.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values.update(user)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}; known keys: {sorted(known)}")
    defaults = TrainConfig()
    typed = {key: _coerce(key, value, getattr(defaults, key)) for key, value in values.items()}
    variant = typed.get("variant", defaults.variant)
    # A preset's weights are starting points for every variant; a user's are a request.
    for name in UNUSED_WEIGHTS.get(variant, ()):
        if name in user and typed[name] != 0.0:
            raise ConfigError(
                f"variant {variant!r} has no {name} term, so {name} must be 0 or unset "
                f"(got {typed[name]}); the variant decides which loss terms exist"
            )
    return TrainConfig(**typed)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Give a YAML or flag value the type of the field's default (YAML reads 1e-5 as a string)."""
    kind = type(default)
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if kind in (int, float, str):
            return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a {kind.__name__}, got {value!r}") from None
    return value


def save_yaml(config: TrainConfig) -> bytes:
    return yaml.safe_dump(config.to_dict(), sort_keys=False).encode()
