"""The training loop: data, the D → G → F/C iteration, logging, validation, checkpoints, resume."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from genadapt.datasets import SegmentationDataset, Transform, get_dataset_kind
from genadapt.evaluate import evaluate
from genadapt.fileio import remove_stale_temporaries
from genadapt.imaging import IMAGENET
from genadapt.labels import get_label_space
from genadapt.model import ModelConfig, build_model, check_input_size
from genadapt.runtime import TorchSegmenter
from genadapt.spec import ModelSpec
from genadapt.trainer.adapter import Adapter, Batch
from genadapt.trainer.config import ConfigError, TrainConfig
from genadapt.trainer.data import StepDataset, step_loader, to_device_batch
from genadapt.trainer.run import RunFolder, restore
from genadapt.vgg_import import load_vgg16_weights

SCRATCH = "scratch"  # vgg_weights: F from scratch, said explicitly (the paper presets ask)

log = logging.getLogger(__name__)


def fc_lr_factor(step: int, config: TrainConfig, epoch_length: int) -> float:
    """F/C learning-rate multiplier: ×lr_decay every lr_decay_epochs epochs (a pure function)."""
    return config.lr_decay ** (step // max(1, config.lr_decay_epochs * epoch_length))


def adv_ramp_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of α and β: a linear ramp from 0 over `adv_ramp` iterations after the source
    warm-up (a pure function, so that a resumed run continues it exactly)."""
    step -= config.source_warmup
    return min(1.0, max(0, step) / config.adv_ramp) if config.adv_ramp > 0 else 1.0


@dataclass
class Data:
    source: StepDataset
    target: StepDataset | None
    val: SegmentationDataset
    val_indices: list[int]
    epoch_length: int


def training_transform(config: TrainConfig, kind: str) -> Transform:
    """How dataset `kind`'s frames become training windows (the authors' rule is per dataset)."""
    width = get_dataset_kind(kind).authors_frame_width
    return Transform(
        config.size, config.crop, config.hflip, resize=config.resize, frame_width=width
    )


def build_data(config: TrainConfig, rank: int = 0) -> Data:
    space = get_label_space(config.label_space)
    source = SegmentationDataset(
        config.source_kind,
        config.source_root,
        config.source_split,
        space,
        training_transform(config, config.source_kind),
    )
    n_val = config.source_val_count
    if n_val >= len(source):
        raise ConfigError(
            f"source_val_count={n_val} leaves no training images of the {len(source)} in "
            f"{config.source_root}"
        )
    train_ids = list(range(len(source) - n_val))
    val_ids = list(range(len(source) - n_val, len(source)))[: config.val_images]
    steps = config.iterations * config.batch_size
    seed = config.seed + 1_000 * rank  # each DDP rank draws its own samples
    src = StepDataset(source, train_ids, seed, steps)
    tgt = None
    epoch = len(train_ids)
    if config.variant != "source-only":
        target = SegmentationDataset(
            config.target_kind,
            config.target_root,
            config.target_split,
            space,
            training_transform(config, config.target_kind),
            with_labels=False,
        )
        tgt = StepDataset(target, list(range(len(target))), seed + 1, steps)
        epoch = min(epoch, len(target))
    val = SegmentationDataset(config.source_kind, config.source_root, config.source_split, space)
    return Data(src, tgt, val, val_ids, epoch)


def _batches(loader: DataLoader | None) -> Iterator[dict | None]:
    if loader is None:
        while True:
            yield None
    yield from loader


def validate(adapter: Adapter, config: TrainConfig, data: Data) -> float:
    """Source-val mIoU (%) with the evaluation protocol; target labels are never used."""
    if not data.val_indices:
        return float("nan")
    model = adapter.deployed
    was_training = model.training
    model.eval()
    space = get_label_space(config.label_space)
    spec = ModelSpec(space, config.input_size, IMAGENET)
    segmenter = TorchSegmenter(model, spec, cuda_graphs=False)
    # Decoding happens in loader workers, off the thread that drives the accelerator.
    workers = min(config.num_workers, len(data.val_indices))
    result = evaluate(
        segmenter, data.val, num_workers=workers, indices=data.val_indices, progress=False
    )
    model.train(was_training)
    return next(iter(result.to_dict()["miou"].values()))


class Stopper:
    """SIGINT/SIGTERM → finish the iteration, save, exit cleanly; a second signal interrupts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Stopper:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested: saving after this iteration (again to abort)")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def pick_device(config: TrainConfig, local_rank: int = 0) -> torch.device:
    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


@dataclass
class Context:
    """Where and how this process trains (one process per GPU under torchrun)."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def setup_context(config: TrainConfig) -> Context:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    ctx = Context(pick_device(config, local_rank), rank, world)
    if config.deterministic:
        # cuBLAS needs this before its first call to be deterministic (PyTorch's reproducibility
        # notes); the flag makes any op without a deterministic kernel raise instead of drift.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    if ctx.cuda:
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.cuda.set_device(ctx.device)
    if world > 1:
        dist.init_process_group("nccl" if ctx.cuda else "gloo")
        dist.barrier()  # rank 0 has created the run folder
    return ctx


def build_adapter(config: TrainConfig, ctx: Context, run: RunFolder, resume: bool):
    """F+C (optionally ImageNet-initialized), G, D and optimizers on the device; returns the
    adapter and the step to start from."""
    check_input_size(config.input_size[1], config.input_size[0], config.padding)
    torch.manual_seed(config.seed + ctx.rank)
    space = get_label_space(config.label_space)
    model = build_model(ModelConfig(space.num_classes, config.width, config.padding))
    if config.vgg_weights not in ("", SCRATCH) and not resume:
        load_vgg16_weights(model, config.vgg_weights, config.vgg_layout)
    adapter = Adapter(model, config)
    fmt = torch.channels_last if ctx.cuda and config.channels_last else torch.contiguous_format
    adapter.to(ctx.device, memory_format=fmt)  # before restore: optimizer state follows params
    start = restore(adapter, run.load_resume()) if resume else 0
    if ctx.world > 1:
        adapter.distribute([ctx.device.index] if ctx.cuda else None)
    adapter.train()
    return adapter, start


def train(config: TrainConfig, run: RunFolder, resume: bool = False) -> dict:
    """Train; returns the final metrics. Checkpoints land in `run` as the run goes."""
    ctx = setup_context(config)
    if ctx.is_main:  # a save killed mid-way (kill -9) leaves a temporary file: not for good
        remove_stale_temporaries(run.path)
    adapter, start = build_adapter(config, ctx, run, resume)
    if resume and ctx.is_main:
        run.truncate_metrics(start)
    data = build_data(config, ctx.rank)
    loaders = [
        step_loader(d, start, config.batch_size, config.num_workers, ctx.cuda) if d else None
        for d in (data.source, data.target)
    ]
    to_batch = BatchMaker(ctx, config)
    autocast = precision_context(ctx, config)
    logger = LossLogger(run, config, start, ctx.is_main)
    progress = tqdm(total=config.iterations, initial=start, desc="train", disable=not ctx.is_main)
    batches = zip(_batches(loaders[0]), _batches(loaders[1]), strict=False)
    book = Bookkeeping(config, run, data, progress)
    book.best = run.best_source_val(start) if resume and ctx.is_main else float("-inf")
    # The bar is closed however the loop ends, so that an error line never lands on it.
    with Stopper() as stopper, progress, logging_redirect_tqdm():
        for step, (src, tgt) in enumerate(batches, start):
            if step >= config.iterations:
                break
            adapter.set_fc_lr(fc_lr_factor(step, config, data.epoch_length))
            adapter.adv_scale = adv_ramp_factor(step, config)
            adapter.warming_up = step < config.source_warmup
            batch = to_batch(src, tgt)
            with autocast:
                losses = adapter.iteration(batch)
            done = step + 1
            progress.update(1)
            logger.add(losses, done, adapter.opt_fc.param_groups[0]["lr"], progress)
            last = done == config.iterations or stopper.requested
            if not ctx.is_main:  # rank 0 validates and saves; the others only train
                if stopper.requested:
                    break
                continue
            book.after_step(adapter, logger, done, batch, last)
            if stopper.requested:
                log.warning("stopped at step %d; continue with --resume %s", done, run.path)
                book.metrics["interrupted"] = True
                break
    if ctx.world > 1:
        dist.destroy_process_group()
    return book.metrics


def precision_context(ctx: Context, config: TrainConfig) -> torch.autocast:
    """bf16 autocast when asked for on CUDA (said as the deviation it is), else a no-op."""
    enabled = ctx.cuda and config.amp == "bf16"
    if enabled and ctx.is_main:
        log.warning("bf16 autocast: a deviation from the authors' fp32 training (amp: off)")
    return torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=enabled)


class Bookkeeping:
    """What rank 0 does after an iteration: validate and select, save the resume state, the
    curves and the reconstructions.

    Model selection is on held-out source images, as the authors' model_best: checkpoint.pt is
    replaced only when source-val mIoU does not drop. Without validation it is the last model.
    """

    def __init__(self, config: TrainConfig, run: RunFolder, data: Data, progress: tqdm) -> None:
        self.config, self.run, self.data, self.progress = config, run, data, progress
        self.selecting = bool(config.val_every and data.val_indices)
        self.best = float("-inf")
        self.metrics: dict = {}

    def after_step(
        self, adapter: Adapter, logger: LossLogger, done: int, batch: Batch, last: bool
    ) -> None:
        config, run = self.config, self.run
        if self.selecting and (done % config.val_every == 0 or last):
            score = validate(adapter, config, self.data)
            self.metrics = {"source_val_miou": score, "step": done}
            logger.write({"type": "val", "step": done, "miou": score})
            self.progress.write(f"step {done}: source-val mIoU {score:.1f}")
            if score >= self.best:  # ties: the later, longer-trained model
                self.best = score
                run.save_checkpoint(adapter, config, done, self.metrics)
        if done % config.checkpoint_every == 0 or last:
            run.save_resume(adapter, config, done, self.metrics)
            if not self.selecting:
                run.save_checkpoint(adapter, config, done, self.metrics)
            run.plot_curves()
            run.save_reconstructions(adapter, batch)


class BatchMaker:
    """Loader output → a `Batch` on the device, normalized there (free on a GPU)."""

    def __init__(self, ctx: Context, config: TrainConfig) -> None:
        self.device = ctx.device
        self.channels_last = ctx.cuda and config.channels_last
        self.mean = torch.tensor(IMAGENET.mean, device=ctx.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET.std, device=ctx.device).view(1, 3, 1, 1)

    def __call__(self, src: dict, tgt: dict | None) -> Batch:
        args = (self.device, self.mean, self.std, self.channels_last)
        xs, xs01 = to_device_batch(src, *args)
        batch = Batch(xs=xs, ys=src["label"].to(self.device, non_blocking=True), xs01=xs01)
        if tgt is not None:
            batch.xt, batch.xt01 = to_device_batch(tgt, *args)
        return batch


class LossLogger:
    """Sums losses on the device and reads them once per log interval (one host sync)."""

    def __init__(self, run: RunFolder, config: TrainConfig, start: int, is_main: bool) -> None:
        self.run, self.config, self.is_main = run, config, is_main
        self.writer = _tensorboard(run) if config.tensorboard and is_main else None
        self.sums: dict[str, torch.Tensor] = {}
        self.since, self.tick = start, time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor], done: int, lr: float, progress: tqdm) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0) + value
        if done % self.config.log_every and done != self.config.iterations:
            return
        n = done - self.since
        record = {k: round(float(v) / n, 5) for k, v in self.sums.items()}
        record |= {
            "type": "train",
            "step": done,
            "lr_fc": lr,
            "sec_per_iter": round((time.perf_counter() - self.tick) / n, 4),
        }
        self.sums, self.since, self.tick = {}, done, time.perf_counter()
        progress.set_postfix(f_seg=record["f_seg"], sec_per_iter=record["sec_per_iter"])
        self.write(record)

    def write(self, record: dict) -> None:
        if not self.is_main:
            return
        self.run.log(record)
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, float):
                    self.writer.add_scalar(f"{record['type']}/{key}", value, record["step"])
            self.writer.flush()


def _tensorboard(run: RunFolder):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "tensorboard=true needs the tensorboard package: pip install tensorboard"
        ) from None
    return SummaryWriter(str(run.path / "tensorboard"))
