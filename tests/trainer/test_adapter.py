import pytest
import torch

from genadapt.model import ModelConfig, build_model
from genadapt.trainer import adapter as adapter_module
from genadapt.trainer.adapter import Adapter, Batch
from genadapt.trainer.config import resolve_config
from genadapt.trainer.networks import SRC_REAL, TGT_REAL, Generator, PatchDiscriminator

SIZE = (32, 64)  # (H, W)


def make_adapter(variant: str = "full", **overrides) -> Adapter:
    torch.manual_seed(0)
    config = resolve_config("cpu-tiny", overrides={"variant": variant, **overrides})
    model = build_model(ModelConfig(num_classes=19, width=0.0625, padding="pad1"))
    with torch.no_grad():  # non-zero score layers, so that gradients reach every part of F
        for score in (model.score_fr, model.score_pool4, model.score_pool3):
            score.weight.normal_(0, 0.1)
    return Adapter(model, config).train()


def make_batch(n: int = 1) -> Batch:
    g = torch.Generator().manual_seed(1)
    xs01, xt01 = torch.rand(n, 3, *SIZE, generator=g), torch.rand(n, 3, *SIZE, generator=g)
    ys = torch.randint(0, 19, (n, *SIZE), generator=g).to(torch.uint8)
    ys[:, :2] = 255
    return Batch(xs=xs01 * 2 - 1, ys=ys, xs01=xs01, xt=xt01 * 2 - 1, xt01=xt01)


def snapshot(adapter: Adapter) -> dict[str, dict[str, torch.Tensor]]:
    nets = {"fc": adapter.fc, "G": adapter.G, "D": adapter.D}
    return {
        name: {k: v.detach().clone() for k, v in net.named_parameters()}
        for name, net in nets.items()
        if net is not None
    }


def changed(before, after) -> set[str]:
    return {
        name
        for name in before
        if any(not torch.equal(before[name][k], after[name][k]) for k in before[name])
    }


def test_each_step_changes_exactly_its_networks():
    adapter = make_adapter()
    batch = make_batch()
    feats, logits = adapter.fc_run(torch.cat([batch.xs, batch.xt]), 1)
    fake = adapter.G(tuple(f.detach() for f in feats), SIZE)

    before = snapshot(adapter)
    adapter.d_step(batch, fake.detach())
    assert changed(before, snapshot(adapter)) == {"D"}

    before = snapshot(adapter)
    adapter.g_step(batch, fake)
    assert changed(before, snapshot(adapter)) == {"G"}

    before = snapshot(adapter)
    adapter.f_step(batch, feats, logits)
    after = snapshot(adapter)
    assert changed(before, after) == {"fc"}
    # Every trainable parameter of F and C moved; the frozen bilinear upsamplers are buffers.
    assert all(not torch.equal(before["fc"][k], after["fc"][k]) for k in before["fc"])
    assert all(p.requires_grad for p in adapter.parameters()), "a step left a network frozen"


def test_cross_domain_targets_are_swapped_in_the_f_step(monkeypatch):
    adapter = make_adapter()
    batch = make_batch(n=2)
    calls = []

    def recording_ce(logits, target):
        if isinstance(target, int):
            calls.append((step, target))
        return adapter_module.F.cross_entropy(
            logits.float(), _full(logits, target), ignore_index=255
        )

    def _full(logits, target):
        if not isinstance(target, int):
            return target
        b, _, h, w = logits.shape
        return torch.full((b, h, w), target, dtype=torch.long)

    monkeypatch.setattr(adapter_module, "ce", recording_ce)
    feats, logits = adapter.fc_run(torch.cat([batch.xs, batch.xt]), 2)
    fake = adapter.G(tuple(f.detach() for f in feats), SIZE)
    step = "d"
    adapter.d_step(batch, fake.detach())
    step = "g"
    adapter.g_step(batch, fake)
    step = "f"
    adapter.f_step(batch, feats, logits)
    # D: the four true domains; G: within-domain "real"; F: source → target-real, target → source.
    assert [t for s, t in calls if s == "d"] == [0, 1, 2, 3]
    assert [t for s, t in calls if s == "g"] == [SRC_REAL, TGT_REAL]
    assert [t for s, t in calls if s == "f"] == [TGT_REAL, SRC_REAL]


@pytest.mark.parametrize("variant", ["full", "source-only", "feature-d", "global-d", "no-aux"])
def test_every_variant_iterates_and_returns_finite_losses(variant):
    adapter = make_adapter(variant)
    expected = {
        "full": {"d_domain", "d_aux", "g_aux", "g_adv", "g_rec", "f_seg", "f_aux", "f_adv"},
        "source-only": {"f_seg"},
        "feature-d": {"d_domain", "f_seg", "f_adv"},
    }
    for _ in range(2):
        losses = adapter.iteration(make_batch(n=2))
    assert set(losses) == expected.get(variant, expected["full"])
    assert all(torch.isfinite(v) for v in losses.values())
    assert (adapter.G is None) == (variant in ("source-only", "feature-d"))
    assert (adapter.D is None) == (variant == "source-only")


def test_variants_set_their_weights():
    assert resolve_config("cpu-tiny", overrides={"variant": "source-only"}).beta == 0
    assert resolve_config("cpu-tiny", overrides={"variant": "no-aux"}).alpha == 0
    assert resolve_config("cpu-tiny", overrides={"variant": "no-aux"}).beta == 0.1


def test_generator_and_discriminator_shapes():
    config = ModelConfig(num_classes=7, width=0.0625, padding="pad1")
    feats = build_model(config).embed(torch.randn(2, 3, 64, 96))
    image = Generator(config)(feats, (64, 96))
    assert image.shape == (2, 3, 64, 96) and image.min() >= 0 and image.max() <= 1
    domain, classes = PatchDiscriminator(config)(image)
    assert domain.shape == (2, 4, 8, 12) and classes.shape == (2, 7, 8, 12)
    domain, _ = PatchDiscriminator(config, global_domain=True)(image)
    assert domain.shape == (2, 4, 1, 1)
    # The 100-padded F gives maps offset by a few pixels; G still lands on the input size.
    config100 = ModelConfig(num_classes=7, width=0.0625, padding="pad100")
    feats = build_model(config100).embed(torch.randn(1, 3, 50, 70))
    assert Generator(config100)(feats, (50, 70)).shape == (1, 3, 50, 70)


def test_gan_init_follows_the_paper():
    d = PatchDiscriminator(ModelConfig(width=0.25))
    w = d.body[0].weight
    assert abs(w.std().item() - 0.02) < 0.004 and d.body[0].bias.abs().max() <= 0.01
