"""One training iteration of the method: D step, G step, F/C step (docs/method.md).

Inputs per iteration: a source batch (Xs, Ys) and a target batch Xt, as uint8 images and uint8
labels. F sees them normalized; D and the reconstruction loss see them in [0, 1].

F runs once on [Xs; Xt]: its weights do not change before the F/C step, so the same features
feed the D step (detached), the G step (detached) and the F/C step (with gradients). G's output
from before its update feeds the D and G steps; the F/C step recomputes G and D with their new
weights, frozen by `requires_grad_(False)` so that gradients reach F through them.

How the losses are reduced is the config's `loss_reduction`: the authors' sums over pixels
("sum", under which α and β act as 0.0016) or per-pixel means ("mean"); the logged losses are
in the same units, so a summed run logs per-image sums.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from genadapt.labels import IGNORE_ID
from genadapt.model import FCN8s
from genadapt.trainer.config import TrainConfig
from genadapt.trainer.networks import (
    SRC_FAKE,
    SRC_REAL,
    TGT_FAKE,
    TGT_REAL,
    FeatureDiscriminator,
    Generator,
    PatchDiscriminator,
    patch_grid_pixels,
)


@contextmanager
def frozen(*nets: nn.Module | None) -> Iterator[None]:
    """Freeze networks for one step: gradients pass through them, their weights get none."""
    nets = tuple(n for n in nets if n is not None)
    for net in nets:
        net.requires_grad_(False)
    try:
        yield
    finally:
        for net in nets:
            net.requires_grad_(True)
        # The bilinear upsamplers of C are buffers, so requires_grad_ never touches them.


def ce(
    logits: torch.Tensor,
    target: torch.Tensor | int,
    reduction: str = "mean",
    stands_for: int | None = None,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Pixel-wise cross entropy; an int target is one domain label for every output pixel.

    "mean": the mean over the batch's labelled pixels. "sum": the authors' reduction, the sum over
    an image's labelled pixels, averaged over the batch (they divide each step's total by the
    batch size). `stands_for` counts an output map with fewer pixels than D's patch grid (the
    global and feature-space D ablations) as that many pixels, so that an ablation changes the
    structure of D and not, through the reduction, the weight of its loss. `smoothing` is
    PyTorch's label smoothing (the target mixed with the uniform distribution by that share).
    """
    if isinstance(target, int):
        b, _, h, w = logits.shape
        target = torch.full((b, h, w), target, dtype=torch.long, device=logits.device)
    kwargs = {"ignore_index": IGNORE_ID, "label_smoothing": smoothing}
    if reduction == "mean":
        return F.cross_entropy(logits.float(), target, **kwargs)
    if stands_for is not None:
        return F.cross_entropy(logits.float(), target, **kwargs) * stands_for
    summed = F.cross_entropy(logits.float(), target, reduction="sum", **kwargs)
    return summed / logits.shape[0]


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of (B, H, W) labels to `size` = (h, w) of D's output (H then W)."""
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


class FCForward(nn.Module):
    """F on [Xs; Xt] and C on the source part, as one forward() so that DDP can wrap it."""

    def __init__(self, fc: FCN8s) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor, n_source: int):
        feats = self.fc.embed(x)
        logits = self.fc.classify(tuple(f[:n_source] for f in feats), (x.shape[-2], x.shape[-1]))
        return feats, logits


@dataclass
class Batch:
    """Tensors on the device. xs/xt normalized for F; xs01/xt01 in [0, 1] for D and L1."""

    xs: torch.Tensor
    ys: torch.Tensor
    xs01: torch.Tensor
    xt: torch.Tensor | None = None
    xt01: torch.Tensor | None = None


class Adapter(nn.Module):
    """F+C, G and D with their optimizers; `iteration` runs the three steps."""

    def __init__(self, model: FCN8s, config: TrainConfig) -> None:
        super().__init__()
        self.cfg = config
        self.fc = model  # F (embed) and C (classify)
        self.G = Generator(model.config) if config.uses_generator else None
        if config.variant == "feature-d":
            self.D: nn.Module | None = FeatureDiscriminator(model.config)
        elif config.variant == "source-only":
            self.D = None
        else:
            self.D = PatchDiscriminator(
                model.config,
                global_domain=config.variant == "global-d",
                pixel_head=config.variant != "no-aux",
            )
        self.opt_fc = torch.optim.Adam(self._fc_param_groups(), betas=config.betas_fc)
        self.opt_g = self._gan_optimizer(self.G)
        self.opt_d = self._gan_optimizer(self.D)
        # What each step trains through: the modules themselves, or their DDP wrappers after
        # `distribute`. A frozen network is always called unwrapped: it has nothing to sync.
        self.fc_run: nn.Module = FCForward(model)
        self.adv_scale = 1.0  # the training loop's ramp of α and β (config.adv_ramp)
        self.warming_up = False  # the training loop's source warm-up (config.source_warmup)
        self.G_run, self.D_run = self.G, self.D
        # Polyak averaging of F/C (config.ema_decay): a frozen copy that follows the weights.
        self.fc_ema: FCN8s | None = None
        if config.ema_decay > 0:
            self.fc_ema = copy.deepcopy(model).requires_grad_(False)
        self.ema_updates = 0

    @property
    def deployed(self) -> FCN8s:
        """The F+C that is validated and saved as checkpoint.pt: the average, or the iterate."""
        return self.fc_ema if self.fc_ema is not None else self.fc

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema ← ema + (1 − d)·(θ − ema), d ramped as (1 + n)/(10 + n) up to ema_decay so that the
        first updates are not dominated by the random initialization (TensorFlow's rule)."""
        if self.fc_ema is None:
            return
        self.ema_updates += 1
        decay = min(self.cfg.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        ema = list(self.fc_ema.parameters())
        torch._foreach_lerp_(ema, list(self.fc.parameters()), 1.0 - decay)
        for average, buffer in zip(self.fc_ema.buffers(), self.fc.buffers(), strict=True):
            average.copy_(buffer)

    def distribute(self, device_ids: list[int] | None) -> None:
        """Wrap each trained network in DistributedDataParallel (torchrun); one forward and one
        backward per network and iteration, as DDP expects."""
        from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817

        self.fc_run = DDP(self.fc_run, device_ids=device_ids)
        self.G_run = DDP(self.G, device_ids=device_ids) if self.G is not None else None
        self.D_run = DDP(self.D, device_ids=device_ids) if self.D is not None else None

    def _fc_param_groups(self) -> list[dict]:
        weights = [p for n, p in self.fc.named_parameters() if not n.endswith("bias")]
        biases = [p for n, p in self.fc.named_parameters() if n.endswith("bias")]
        lr = self.cfg.lr_fc
        return [
            {"params": weights, "lr": lr, "base_lr": lr},
            {
                "params": biases,
                "lr": lr * self.cfg.lr_fc_bias_mult,
                "base_lr": lr * self.cfg.lr_fc_bias_mult,
            },
        ]

    def _gan_optimizer(self, net: nn.Module | None) -> torch.optim.Optimizer | None:
        if net is None:
            return None
        return torch.optim.Adam(net.parameters(), lr=self.cfg.lr_gd, betas=self.cfg.betas_gd)

    def set_fc_lr(self, factor: float) -> None:
        for group in self.opt_fc.param_groups:
            group["lr"] = group["base_lr"] * factor

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"fc": self.opt_fc, "g": self.opt_g, "d": self.opt_d}
        return {k: v for k, v in opts.items() if v is not None}

    # ---- the losses ----------------------------------------------------------------------
    def _ce(self, logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
        return ce(logits, target, self.cfg.loss_reduction)

    def _domain_ce(
        self, domain: torch.Tensor, target: int, image: tuple[int, int], smoothing: float = 0.0
    ) -> torch.Tensor:
        """CE of D's domain output; a global or feature-space one counts as D's patch grid."""
        stands_for = None
        if self.cfg.variant in ("global-d", "feature-d"):
            stands_for = patch_grid_pixels(*image)
        return ce(domain, target, self.cfg.loss_reduction, stands_for, smoothing)

    def _l1(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        # The authors' L1 is a mean in both reductions; their step total is divided by the batch.
        loss = F.l1_loss(fake.float(), real)
        return loss / fake.shape[0] if self.cfg.loss_reduction == "sum" else loss

    def d_loss(self, batch: Batch, fake: torch.Tensor) -> tuple[torch.Tensor, Losses]:
        """D learns the 4 domains on real and generated images, and labels source pixels."""
        n, image = batch.xs.shape[0], _image_size(batch)
        images = torch.cat([batch.xs01, fake[:n], batch.xt01, fake[n:]])  # one D pass
        domain, classes = self.D_run(images)
        d_src, d_src_fake, d_tgt, d_tgt_fake = domain.split(n)
        smooth = self.cfg.d_label_smoothing  # D's targets only: G and F keep hard ones
        loss_dom = self._domain_ce(d_src, SRC_REAL, image, smooth)
        loss_dom = loss_dom + self._domain_ce(d_src_fake, SRC_FAKE, image, smooth)
        loss_dom = loss_dom + self._domain_ce(d_tgt, TGT_REAL, image, smooth)
        loss_dom = loss_dom + self._domain_ce(d_tgt_fake, TGT_FAKE, image, smooth)
        if classes is None:  # no-aux: D has no pixel-labeling head
            return loss_dom, {"d_domain": loss_dom}
        loss_aux = self._ce(classes[:n], resize_labels(batch.ys, classes.shape[-2:]))
        return loss_dom + loss_aux, {"d_domain": loss_dom, "d_aux": loss_aux}

    def g_loss(self, batch: Batch, fake: torch.Tensor) -> tuple[torch.Tensor, Losses]:
        """G (D frozen, F detached): fool D within each domain, keep labels, reconstruct."""
        n, cfg, image = batch.xs.shape[0], self.cfg, _image_size(batch)
        with frozen(self.D):
            domain, classes = self.D(fake)
        loss_adv = self._domain_ce(domain[:n], SRC_REAL, image)
        loss_adv = loss_adv + self._domain_ce(domain[n:], TGT_REAL, image)
        loss_rec = self._l1(fake[:n], batch.xs01) + self._l1(fake[n:], batch.xt01)
        loss = cfg.g_adv_weight * loss_adv + cfg.g_recon_weight * loss_rec
        parts = {"g_adv": loss_adv, "g_rec": loss_rec}
        if classes is not None:
            loss_aux = self._ce(classes[:n], resize_labels(batch.ys, classes.shape[-2:]))
            loss = loss + cfg.g_aux_weight * loss_aux
            parts["g_aux"] = loss_aux
        return loss, parts

    def f_loss(self, batch: Batch, feats, logits: torch.Tensor) -> tuple[torch.Tensor, Losses]:
        """F/C (G, D frozen): segment the source, plus the swapped-domain adversarial losses."""
        n, image = batch.xs.shape[0], _image_size(batch)
        loss_seg = self._ce(logits, batch.ys.long())
        with frozen(self.G, self.D):
            domain, classes = self.D(self.G(feats, image))
        # The cross-domain losses: source embeddings should pass as target, and vice versa.
        loss_adv = self._domain_ce(domain[:n], TGT_REAL, image)
        loss_adv = loss_adv + self._domain_ce(domain[n:], SRC_REAL, image)
        loss = loss_seg + self.adv_scale * self.cfg.beta * loss_adv
        parts = {"f_seg": loss_seg, "f_adv": loss_adv}
        if classes is not None:
            loss_aux = self._ce(classes[:n], resize_labels(batch.ys, classes.shape[-2:]))
            loss = loss + self.adv_scale * self.cfg.alpha * loss_aux
            parts["f_aux"] = loss_aux
        return loss, parts

    def feature_d_loss(self, fc7: torch.Tensor, n: int, image: tuple[int, int]):
        """Feature-space D: tell source from target embeddings."""
        domain = self.D_run(fc7)
        smooth = self.cfg.d_label_smoothing
        loss = self._domain_ce(domain[:n], SRC_REAL, image, smooth)
        loss = loss + self._domain_ce(domain[n:], TGT_REAL, image, smooth)
        return loss, {"d_domain": loss}

    def feature_f_loss(self, batch: Batch, feats, logits: torch.Tensor):
        n, image = batch.xs.shape[0], _image_size(batch)
        loss_seg = self._ce(logits, batch.ys.long())
        with frozen(self.D):
            domain = self.D(feats[2])
        loss_adv = self._domain_ce(domain[:n], TGT_REAL, image)
        loss_adv = loss_adv + self._domain_ce(domain[n:], SRC_REAL, image)
        loss = loss_seg + self.adv_scale * self.cfg.beta * loss_adv
        return loss, {"f_seg": loss_seg, "f_adv": loss_adv}

    # ---- the iteration -------------------------------------------------------------------
    def iteration(self, batch: Batch) -> Losses:
        """One D → G → F/C iteration; returns the detached losses (no host sync)."""
        n = batch.xs.shape[0]
        if self.cfg.variant == "source-only" or self.warming_up:
            _, logits = self.fc_run(batch.xs, n)
            loss = self._ce(logits, batch.ys.long())
            self._update(self.opt_fc, loss)
            self.update_ema()
            return {"f_seg": loss.detach()}
        feats, logits = self.fc_run(torch.cat([batch.xs, batch.xt]), n)  # F, C with gradients
        if self.cfg.variant == "feature-d":
            loss, parts = self.feature_d_loss(feats[2].detach(), n, _image_size(batch))
            self._update(self.opt_d, loss)
            loss, f_parts = self.feature_f_loss(batch, feats, logits)
            self._update(self.opt_fc, loss)
            self.update_ema()
            return _detached(parts | f_parts)
        fake = self.G_run(tuple(f.detach() for f in feats), _image_size(batch))  # for D and G
        losses = self.d_step(batch, fake.detach())
        losses |= self.g_step(batch, fake)
        return losses | self.f_step(batch, feats, logits)

    def d_step(self, batch: Batch, fake: torch.Tensor) -> Losses:
        loss, parts = self.d_loss(batch, fake)
        self._update(self.opt_d, loss)
        return _detached(parts)

    def g_step(self, batch: Batch, fake: torch.Tensor) -> Losses:
        loss, parts = self.g_loss(batch, fake)
        self._update(self.opt_g, loss)
        return _detached(parts)

    def f_step(self, batch: Batch, feats, logits: torch.Tensor) -> Losses:
        loss, parts = self.f_loss(batch, feats, logits)
        self._update(self.opt_fc, loss)
        self.update_ema()
        return _detached(parts)

    @staticmethod
    def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        # Each step's graph is its own: D and G see detached inputs, so F's graph is consumed
        # only by the F/C step and nothing needs to be retained.
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(loss.device.type, enabled=False):  # backward outside autocast
            loss.backward()
        optimizer.step()


Losses = dict[str, torch.Tensor]


def _image_size(batch: Batch) -> tuple[int, int]:
    return batch.xs.shape[-2], batch.xs.shape[-1]


def _detached(losses: Losses) -> Losses:
    return {k: v.detach() for k, v in losses.items()}
