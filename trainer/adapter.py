"""One training iteration of the method: D step, G step, F/C step (METHOD.md).

Inputs per iteration: a source batch (Xs, Ys) and a target batch Xt, as uint8 images and uint8
labels. F sees them normalized; D and the reconstruction loss see them in [0, 1].

F runs once on [Xs; Xt]: its weights do not change before the F/C step, so the same features
feed the D step (detached), the G step (detached) and the F/C step (with gradients). G's output
from before its update feeds the D and G steps; the F/C step recomputes G and D with their new
weights, frozen by `requires_grad_(False)` so that gradients reach F through them.
"""

from __future__ import annotations

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


def ce(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
    """Pixel-wise cross entropy; an int target is one domain label for every output pixel."""
    if isinstance(target, int):
        b, _, h, w = logits.shape
        target = torch.full((b, h, w), target, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), target, ignore_index=IGNORE_ID)


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
            self.D = PatchDiscriminator(model.config, global_domain=config.variant == "global-d")
        self.opt_fc = torch.optim.Adam(self._fc_param_groups(), betas=config.betas_fc)
        self.opt_g = self._gan_optimizer(self.G)
        self.opt_d = self._gan_optimizer(self.D)
        # What each step trains through: the modules themselves, or their DDP wrappers after
        # `distribute`. A frozen network is always called unwrapped: it has nothing to sync.
        self.fc_run: nn.Module = FCForward(model)
        self.G_run, self.D_run = self.G, self.D

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

    # ---- the iteration -------------------------------------------------------------------
    def iteration(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One D → G → F/C iteration; returns the detached losses (no host sync)."""
        n = batch.xs.shape[0]
        if self.cfg.variant == "source-only":
            _, logits = self.fc_run(batch.xs, n)
            loss = ce(logits, batch.ys.long())
            self._update(self.opt_fc, loss)
            return {"f_seg": loss.detach()}
        feats, logits = self.fc_run(torch.cat([batch.xs, batch.xt]), n)  # F, C with gradients
        if self.cfg.variant == "feature-d":
            losses = self.feature_d_step(feats[2].detach(), n)
            return losses | self.feature_f_step(batch, feats, logits)
        size = (batch.xs.shape[-2], batch.xs.shape[-1])
        fake = self.G_run(tuple(f.detach() for f in feats), size)  # G(F(·)) for D and G steps
        losses = self.d_step(batch, fake.detach())
        losses |= self.g_step(batch, fake)
        return losses | self.f_step(batch, feats, logits)

    def d_step(self, batch: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """D learns the 4 domains on real and generated images, and labels source pixels."""
        n = batch.xs.shape[0]
        images = torch.cat([batch.xs01, fake[:n], batch.xt01, fake[n:]])  # one D pass
        domain, classes = self.D_run(images)
        d_src, d_src_fake, d_tgt, d_tgt_fake = domain.split(n)
        loss_dom = ce(d_src, SRC_REAL) + ce(d_src_fake, SRC_FAKE)
        loss_dom = loss_dom + ce(d_tgt, TGT_REAL) + ce(d_tgt_fake, TGT_FAKE)
        loss_aux = ce(classes[:n], resize_labels(batch.ys, classes.shape[-2:]))
        self._update(self.opt_d, loss_dom + loss_aux)
        return {"d_domain": loss_dom.detach(), "d_aux": loss_aux.detach()}

    def g_step(self, batch: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """G (D frozen, F detached): fool D within each domain, keep labels, reconstruct."""
        n, cfg = batch.xs.shape[0], self.cfg
        with frozen(self.D):
            domain, classes = self.D(fake)
        loss_aux = ce(classes[:n], resize_labels(batch.ys, classes.shape[-2:]))
        loss_adv = ce(domain[:n], SRC_REAL) + ce(domain[n:], TGT_REAL)
        loss_rec = F.l1_loss(fake[:n].float(), batch.xs01) + F.l1_loss(fake[n:].float(), batch.xt01)
        loss = (
            cfg.g_aux_weight * loss_aux
            + cfg.g_adv_weight * loss_adv
            + cfg.g_recon_weight * loss_rec
        )
        self._update(self.opt_g, loss)
        return {"g_aux": loss_aux.detach(), "g_adv": loss_adv.detach(), "g_rec": loss_rec.detach()}

    def f_step(self, batch: Batch, feats, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """F/C (G, D frozen): segment the source, plus the swapped-domain adversarial losses."""
        n = batch.xs.shape[0]
        loss_seg = ce(logits, batch.ys.long())
        with frozen(self.G, self.D):
            domain, classes = self.D(self.G(feats, (batch.xs.shape[-2], batch.xs.shape[-1])))
        loss_aux = ce(classes[:n], resize_labels(batch.ys, classes.shape[-2:]))
        # The cross-domain losses: source embeddings should pass as target, and vice versa.
        loss_adv = ce(domain[:n], TGT_REAL) + ce(domain[n:], SRC_REAL)
        loss = loss_seg + self.cfg.alpha * loss_aux + self.cfg.beta * loss_adv
        self._update(self.opt_fc, loss)
        return {"f_seg": loss_seg.detach(), "f_aux": loss_aux.detach(), "f_adv": loss_adv.detach()}

    def feature_d_step(self, fc7: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
        """Feature-space D: tell source from target embeddings."""
        domain = self.D_run(fc7)
        loss = ce(domain[:n], SRC_REAL) + ce(domain[n:], TGT_REAL)
        self._update(self.opt_d, loss)
        return {"d_domain": loss.detach()}

    def feature_f_step(self, batch: Batch, feats, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        n = batch.xs.shape[0]
        loss_seg = ce(logits, batch.ys.long())
        with frozen(self.D):
            domain = self.D(feats[2])
        loss_adv = ce(domain[:n], TGT_REAL) + ce(domain[n:], SRC_REAL)
        self._update(self.opt_fc, loss_seg + self.cfg.beta * loss_adv)
        return {"f_seg": loss_seg.detach(), "f_adv": loss_adv.detach()}

    @staticmethod
    def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        # Each step's graph is its own: D and G see detached inputs, so F's graph is consumed
        # only by the F/C step and nothing needs to be retained.
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(loss.device.type, enabled=False):  # backward outside autocast
            loss.backward()
        optimizer.step()
