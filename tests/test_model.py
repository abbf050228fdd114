import pytest
import torch

from genadapt.model import BilinearUpsample, ModelConfig, build_model, count_parameters


@pytest.mark.parametrize("padding", ["pad1", "pad100"])
@pytest.mark.parametrize("size", [(32, 64), (64, 128), (96, 224)])
def test_logits_at_input_size(padding, size):
    model = build_model(ModelConfig(num_classes=5, width=0.0625, padding=padding)).eval()
    logits = model(torch.randn(2, 3, *size))
    assert logits.shape == (2, 5, *size)


@pytest.mark.parametrize("size", [(33, 47), (70, 111)])
def test_pad100_accepts_any_size(size):
    model = build_model(ModelConfig(width=0.0625, padding="pad100")).eval()
    assert model(torch.randn(1, 3, *size)).shape == (1, 19, *size)


def test_pad1_rejects_sizes_not_divisible_by_32():
    model = build_model(ModelConfig(width=0.0625, padding="pad1"))
    with pytest.raises(ValueError, match="divisible by 32"):
        model(torch.randn(1, 3, 40, 64))


def test_embed_returns_pool3_pool4_fc7():
    config = ModelConfig(width=0.25, padding="pad1")
    pool3, pool4, fc7 = build_model(config).embed(torch.randn(1, 3, 64, 128))
    assert pool3.shape == (1, 64, 8, 16)
    assert pool4.shape == (1, 128, 4, 8)
    assert fc7.shape == (1, 1024, 2, 4)


def test_full_width_parameter_count():
    # VGG16 convs + fc6 (7x7 conv) + fc7 (1x1 conv) + three score layers for 19 classes.
    vgg_convs = 14_714_688
    fc6 = 512 * 7 * 7 * 4096 + 4096
    fc7 = 4096 * 4096 + 4096
    scores = (4096 + 512 + 256) * 19 + 3 * 19
    model = build_model(ModelConfig(num_classes=19, width=1.0))
    assert count_parameters(model) == vgg_convs + fc6 + fc7 + scores == 134_353_017


def test_score_layers_start_at_zero_and_upsamplers_are_frozen_bilinear():
    model = build_model(ModelConfig(num_classes=3, width=0.0625)).eval()
    assert torch.count_nonzero(model(torch.randn(1, 3, 64, 64))) == 0
    names = {name for name, _ in model.named_parameters()}
    assert not any(name.startswith("upscore") for name in names)
    assert "upscore8.weight" in model.state_dict()
    # A bilinear ×2 upsampler maps a constant map to the same constant (away from borders).
    up = BilinearUpsample(channels=2, factor=2, padding=1)
    out = up(torch.full((1, 2, 4, 4), 3.0))
    assert out.shape == (1, 2, 8, 8)
    torch.testing.assert_close(out[:, :, 1:-1, 1:-1], torch.full((1, 2, 6, 6), 3.0))


@pytest.mark.parametrize(
    "kwargs", [{"padding": "pad7"}, {"width": 0}, {"num_classes": 0}, {"arch": "resnet"}]
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        ModelConfig(**kwargs)


@pytest.mark.parametrize("padding", ["pad1", "pad100"])
@pytest.mark.parametrize("factor", [2, 8])
def test_the_bilinear_upsampler_equals_its_transposed_convolution(padding, factor):
    """The interpolation FCN8s runs is the frozen bilinear deconvolution, values and gradients,
    at both paddings' geometry (pad1: padding f/2, same-size maps; pad100: padding 0)."""
    upsample = BilinearUpsample(19, factor, factor // 2 if padding == "pad1" else 0).double()
    x = torch.randn(2, 19, 7, 11, dtype=torch.float64, requires_grad=True)
    ours, reference = upsample(x), upsample.deconvolution(x)
    assert ours.shape == reference.shape
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    grads = [torch.autograd.grad((y * torch.cos(y)).sum(), x)[0] for y in (ours, reference)]
    torch.testing.assert_close(*grads, rtol=0, atol=1e-12)
