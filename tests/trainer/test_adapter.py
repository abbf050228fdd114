import pytest
import torch

from genadapt.model import ModelConfig, build_model
from genadapt.trainer import adapter as adapter_module
from genadapt.trainer.adapter import Adapter, Batch
from genadapt.trainer.config import ConfigError, resolve_config
from genadapt.trainer.networks import (
    SRC_REAL,
    TGT_REAL,
    Generator,
    PatchDiscriminator,
    patch_grid_pixels,
)
from genadapt.trainer.train import adv_ramp_factor

SIZE = (32, 64)  # (H, W)


def make_adapter(variant: str = "full", **overrides) -> Adapter:
    torch.manual_seed(0)
    config = resolve_config("cpu-tiny", overrides={"variant": variant, **overrides})
    model = build_model(ModelConfig(num_classes=19, width=0.0625, padding="pad1"))
    with torch.no_grad():  # non-zero score layers, so that gradients reach every part of F
        for score in (model.score_fr, model.score_pool4, model.score_pool3):
            score.weight.normal_(0, 0.1)
    return Adapter(model, config).train()


def make_batch(n: int = 1, ignored_rows: int = 2) -> Batch:
    g = torch.Generator().manual_seed(1)
    xs01, xt01 = torch.rand(n, 3, *SIZE, generator=g), torch.rand(n, 3, *SIZE, generator=g)
    ys = torch.randint(0, 19, (n, *SIZE), generator=g).to(torch.uint8)
    ys[:, :ignored_rows] = 255
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

    real_ce = adapter_module.ce

    def recording_ce(logits, target, *args):
        if isinstance(target, int):
            calls.append((step, target))
        return real_ce(logits, target, *args)

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
        "no-aux": {"d_domain", "g_adv", "g_rec", "f_seg", "f_adv"},
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
    assert resolve_config("cpu-tiny", overrides={"variant": "feature-d"}).alpha == 0


@pytest.mark.parametrize(
    "variant,key", [("source-only", "beta"), ("no-aux", "alpha"), ("feature-d", "alpha")]
)
def test_a_weight_the_variant_has_no_term_for_is_refused(variant, key):
    with pytest.raises(ConfigError, match=f"no {key} term"):
        resolve_config("cpu-tiny", overrides={"variant": variant, key: 0.5})
    assert getattr(resolve_config(None, overrides={"variant": variant, key: 0}), key) == 0
    # A preset's weights (cpu-small: α = β = 0.03) are starting points, not a request.
    assert getattr(resolve_config("cpu-small", overrides={"variant": variant}), key) == 0


def test_no_aux_has_a_discriminator_without_the_pixel_head():
    adapter = make_adapter("no-aux")
    assert adapter.D.classes is None
    assert adapter.D(torch.rand(1, 3, *SIZE))[1] is None


def _gradients(adapter: Adapter, step: str, batch: Batch) -> dict[str, torch.Tensor]:
    """Gradients of one step's total loss on the network that step trains (dropout off)."""
    adapter.eval()
    adapter.zero_grad(set_to_none=True)
    n = batch.xs.shape[0]
    feats, logits = adapter.fc_run(torch.cat([batch.xs, batch.xt]), n)
    if adapter.cfg.variant == "feature-d":
        loss = {
            "d": lambda: adapter.feature_d_loss(feats[2].detach(), n, SIZE)[0],
            "f": lambda: adapter.feature_f_loss(batch, feats, logits)[0],
        }[step]()
        net = adapter.D if step == "d" else adapter.fc
    else:
        fake = adapter.G(tuple(f.detach() for f in feats), SIZE)
        loss = {
            "d": lambda: adapter.d_loss(batch, fake.detach())[0],
            "g": lambda: adapter.g_loss(batch, fake)[0],
            "f": lambda: adapter.f_loss(batch, feats, logits)[0],
        }[step]()
        net = {"d": adapter.D, "g": adapter.G, "f": adapter.fc}[step]
    loss.backward()
    return {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("variant", ["full", "global-d", "no-aux", "feature-d"])
def test_the_authors_sums_act_as_their_effective_weights(variant):
    # The authors sum every cross entropy over its pixels (L1 stays a mean, each step's total is
    # divided by the batch). Divided by the step's pixel count (H·W for F, N_D for D and G),
    # their gradients must equal those of per-pixel means with `effective_weights`.
    authors = make_adapter(variant, loss_reduction="sum", batch_size=2)
    weights = {k: v for k, v in authors.cfg.effective_weights().items() if v or k != "alpha"}
    means = make_adapter(variant, loss_reduction="mean", batch_size=2, **weights)
    height, width = SIZE
    n_d = patch_grid_pixels(height, width)
    assert authors.cfg.effective_weights()["beta"] == pytest.approx(0.1 * n_d / (height * width))
    batch = make_batch(n=2, ignored_rows=0)  # labelled pixels = all pixels, as the formula says
    steps = {"f": height * width, "d": n_d, "g": n_d}
    for step, pixels in steps.items():
        if step == "g" and authors.G is None:
            continue
        summed, meaned = _gradients(authors, step, batch), _gradients(means, step, batch)
        assert summed.keys() == meaned.keys() and summed
        for name in summed:
            torch.testing.assert_close(
                summed[name] / pixels, meaned[name], rtol=1e-4, atol=1e-9, msg=f"{step} {name}"
            )


def test_the_paper_preset_is_the_authors_reduction():
    config = resolve_config("paper")
    assert config.loss_reduction == "sum"
    # 1024×512: N_D = 128 × 64, so α = β = 0.1 / 64 and L1 acts at 1 / 8192 (docs/method.md).
    weights = config.effective_weights()
    assert weights["alpha"] == weights["beta"] == pytest.approx(0.1 / 64)
    assert weights["g_recon_weight"] == pytest.approx(1 / 8192)


def test_generator_and_discriminator_shapes():
    config = ModelConfig(num_classes=7, width=0.0625, padding="pad1")
    feats = build_model(config).embed(torch.randn(2, 3, 64, 96))
    image = Generator(config)(feats, (64, 96))
    assert image.shape == (2, 3, 64, 96) and image.min() >= 0 and image.max() <= 1
    domain, classes = PatchDiscriminator(config)(image)
    assert domain.shape == (2, 4, 8, 12) and classes.shape == (2, 7, 8, 12)
    domain, _ = PatchDiscriminator(config, global_domain=True)(image)
    assert domain.shape == (2, 4, 1, 1)
    # A size that is no multiple of 32: the 100-padded F's ceil-mode maps differ by a pixel
    # from G's doublings; G still lands on the input size (its alignment: test_alignment.py).
    config100 = ModelConfig(num_classes=7, width=0.0625, padding="pad100")
    feats = build_model(config100).embed(torch.randn(1, 3, 50, 70))
    assert Generator(config100)(feats, (50, 70)).shape == (1, 3, 50, 70)


def test_gan_init_follows_the_paper():
    d = PatchDiscriminator(ModelConfig(width=0.25))
    w = d.body[0].weight
    assert abs(w.std().item() - 0.02) < 0.004 and d.body[0].bias.abs().max() <= 0.01


def test_the_adversarial_ramp_scales_alpha_and_beta_from_zero():
    config = resolve_config("cpu-tiny", overrides={"adv_ramp": 100})
    assert [adv_ramp_factor(s, config) for s in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]
    assert adv_ramp_factor(0, resolve_config("cpu-tiny")) == 1.0  # off: the authors' schedule
    adapter, batch = make_adapter(), make_batch()
    feats, logits = adapter.fc_run(torch.cat([batch.xs, batch.xt]), 1)
    adapter.adv_scale = 0.0
    total, parts = adapter.f_loss(batch, feats, logits)
    assert torch.equal(total, parts["f_seg"]) and parts["f_adv"] > 0
    adapter.adv_scale = 0.5
    total, parts = adapter.f_loss(batch, feats, logits)
    expected = parts["f_seg"] + 0.5 * 0.1 * (parts["f_adv"] + parts["f_aux"])
    torch.testing.assert_close(total, expected)


def test_source_warmup_trains_f_and_c_alone_then_adapts():
    config = resolve_config("cpu-tiny", overrides={"source_warmup": 2, "adv_ramp": 4})
    assert [adv_ramp_factor(s, config) for s in (0, 2, 4, 6, 9)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    adapter, batch = make_adapter(source_warmup=2), make_batch()
    before = snapshot(adapter)
    adapter.warming_up = True
    assert set(adapter.iteration(batch)) == {"f_seg"}
    assert changed(before, snapshot(adapter)) == {"fc"}  # G and D wait for the warm-up to end
    adapter.warming_up = False
    assert {"d_domain", "g_adv", "f_adv"} <= set(adapter.iteration(batch))
    assert changed(before, snapshot(adapter)) == {"fc", "G", "D"}
    with pytest.raises(ConfigError, match="source_warmup"):
        resolve_config("cpu-tiny", overrides={"source_warmup": 4})  # all of its 4 iterations


def test_ema_follows_the_weights_and_is_the_deployed_model():
    adapter, batch = make_adapter(ema_decay=0.5), make_batch()
    plain = make_adapter()
    assert adapter.deployed is adapter.fc_ema and plain.deployed is plain.fc
    expected = {k: v.detach().clone() for k, v in adapter.fc.named_parameters()}
    for n in (1, 2, 3):
        adapter.iteration(batch)
        decay = min(0.5, (1 + n) / (10 + n))  # 0.18, 0.25, 0.31: the ramp, below 0.5
        for name, weight in adapter.fc.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * weight.detach()
    for name, average in adapter.fc_ema.named_parameters():
        torch.testing.assert_close(average, expected[name], rtol=1e-5, atol=1e-7)
        assert not average.requires_grad
    assert any(
        not torch.equal(a, w)
        for a, w in zip(adapter.fc_ema.parameters(), adapter.fc.parameters(), strict=True)
    )
    with pytest.raises(ConfigError, match="ema_decay"):
        resolve_config("cpu-tiny", overrides={"ema_decay": 1.0})


def test_learning_rate_decays_as_the_authors_per_variant():
    from genadapt.trainer.train import fc_lr_factor

    source_only = resolve_config("paper", overrides={"variant": "source-only"})
    full = resolve_config("paper")
    assert [fc_lr_factor(s, source_only, 100) for s in (299, 300, 600)] == [1.0, 0.1, 0.1**2]
    assert [fc_lr_factor(s, full, 100) for s in (799, 800)] == [1.0, 0.1]


def test_deterministic_turns_on_deterministic_kernels(monkeypatch):
    import os

    from genadapt.trainer.train import setup_context

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    config = resolve_config("cpu-tiny", overrides={"deterministic": True, "device": "cpu"})
    try:
        setup_context(config)
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


def test_d_label_smoothing_softens_only_the_discriminators_targets():
    smooth, plain, batch = make_adapter(d_label_smoothing=0.2), make_adapter(), make_batch()
    feats, logits = plain.fc_run(torch.cat([batch.xs, batch.xt]), 1)
    fake = plain.G(tuple(f.detach() for f in feats), SIZE).detach()
    torch.manual_seed(5)  # D's dropout draws the same masks in both passes
    _, d_parts = smooth.d_loss(batch, fake)
    # By hand: each domain term is (1 − ε)·CE against the true domain + ε·the mean over the four
    # domains of −log p, averaged over D's patches.
    torch.manual_seed(5)
    with torch.no_grad():
        domain, _ = smooth.D(torch.cat([batch.xs01, fake[:1], batch.xt01, fake[1:]]))
    log_p = torch.log_softmax(domain, dim=1)
    expected = sum(
        -(0.8 * log_p[i, target] + 0.2 * log_p[i].mean(0)).mean()
        for i, target in enumerate((0, 1, 2, 3))  # src-real, src-fake, tgt-real, tgt-fake
    )
    torch.testing.assert_close(d_parts["d_domain"], expected)
    torch.manual_seed(5)
    assert not torch.allclose(plain.d_loss(batch, fake)[1]["d_domain"], expected)
    # G's and F's targets stay hard: their losses are the plain adapter's.
    for name in ("g_loss", "f_loss"):
        args = (batch, fake) if name == "g_loss" else (batch, feats, logits)
        torch.manual_seed(6)
        expected_loss = getattr(plain, name)(*args)[0]
        torch.manual_seed(6)
        torch.testing.assert_close(getattr(smooth, name)(*args)[0], expected_loss)
    with pytest.raises(ConfigError, match="d_label_smoothing"):
        resolve_config("cpu-tiny", overrides={"d_label_smoothing": 1.0})


def test_d_label_smoothing_reaches_the_feature_space_discriminator():
    adapter, batch = make_adapter("feature-d", d_label_smoothing=0.2), make_batch()
    with torch.no_grad():
        fc7 = adapter.fc_run(torch.cat([batch.xs, batch.xt]), 1)[0][2]
        log_p = torch.log_softmax(adapter.D(fc7), dim=1)  # no dropout: the same pass again
    expected = sum(
        -(0.8 * log_p[i, target] + 0.2 * log_p[i].mean(0)).mean()
        for i, target in enumerate((SRC_REAL, TGT_REAL))
    )
    torch.testing.assert_close(adapter.feature_d_loss(fc7, 1, SIZE)[0], expected)
