import pytest
import torch

from genadapt.imaging import IMAGENET_STD
from genadapt.model import ModelConfig, build_model
from genadapt.vgg_import import WeightImportError, load_vgg16_weights

CONV_SHAPES = [
    (64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
    (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512),
]  # fmt: skip
TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
CAFFE_NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
               "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]  # fmt: skip


def vgg16_state(layout: str) -> dict[str, torch.Tensor]:
    """A VGG16 state dict with random values, as torchvision or the Caffe converter saves it."""
    g = torch.Generator().manual_seed(0)
    names = (
        [f"features.{i}" for i in TORCHVISION_CONV_INDICES]
        if layout == "torchvision"
        else CAFFE_NAMES
    )
    state = {}
    for name, (out_ch, in_ch) in zip(names, CONV_SHAPES, strict=True):
        state[f"{name}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g)
        state[f"{name}.bias"] = torch.randn(out_ch, generator=g)
    fc = ["classifier.0", "classifier.3", "classifier.6"]
    if layout == "caffe":
        fc = ["fc6", "fc7", "fc8"]
    # Linear layers, as both layouts store them; fc8 (ImageNet classes) must be ignored.
    for name, shape in zip(fc, [(4096, 25088), (4096, 4096), (1000, 4096)], strict=True):
        state[f"{name}.weight"] = torch.randn(*shape, generator=g)
        state[f"{name}.bias"] = torch.randn(shape[0], generator=g)
    return state


@pytest.fixture(scope="module")
def full_model():
    return build_model(ModelConfig(width=1.0))


@pytest.mark.parametrize("layout", ["torchvision", "caffe"])
def test_import_round_trip(tmp_path, full_model, layout):
    state = vgg16_state(layout)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    assert load_vgg16_weights(full_model, path) == layout

    prefix = "features.0" if layout == "torchvision" else "conv1_1"
    last = "features.28" if layout == "torchvision" else "conv5_3"
    fc6 = "classifier.0" if layout == "torchvision" else "fc6"
    fc7 = "classifier.3" if layout == "torchvision" else "fc7"
    conv1 = full_model.blocks[0][0].weight
    if layout == "torchvision":
        torch.testing.assert_close(conv1, state[f"{prefix}.weight"])
    else:  # BGR 0..255 → RGB normalized: reversed input channels scaled by 255·std
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        torch.testing.assert_close(conv1, state[f"{prefix}.weight"].flip(1) * 255 * std)
    torch.testing.assert_close(full_model.blocks[0][0].bias, state[f"{prefix}.bias"])
    torch.testing.assert_close(full_model.blocks[4][4].weight, state[f"{last}.weight"])
    torch.testing.assert_close(full_model.fc6.weight, state[f"{fc6}.weight"].view(4096, 512, 7, 7))
    torch.testing.assert_close(full_model.fc7.weight, state[f"{fc7}.weight"].view(4096, 4096, 1, 1))


def test_wrong_shape_names_the_key(tmp_path, full_model):
    state = vgg16_state("torchvision")
    state["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    expected = r"'features\.5\.weight' has shape \(128, 32, 3, 3\)"
    with pytest.raises(WeightImportError, match=expected):
        load_vgg16_weights(full_model, tmp_path / "bad.pth")


def test_missing_key_is_named(tmp_path, full_model):
    state = vgg16_state("caffe")
    del state["conv4_2.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightImportError, match="missing key 'conv4_2.bias'"):
        load_vgg16_weights(full_model, tmp_path / "bad.pth")


def test_unknown_layout_and_unreadable_file(tmp_path, full_model):
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightImportError, match="unrecognized VGG16 layout"):
        load_vgg16_weights(full_model, tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a tensor file")
    with pytest.raises(WeightImportError, match="cannot read"):
        load_vgg16_weights(full_model, tmp_path / "junk.pth")


def test_narrow_model_is_refused(tmp_path):
    with pytest.raises(WeightImportError, match="width 1.0"):
        load_vgg16_weights(build_model(ModelConfig(width=0.25)), tmp_path / "x.pth")
