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


def vgg16_state(layout: str, names: str | None = None) -> dict[str, torch.Tensor]:
    """One set of random VGG16 weights for normalized RGB input (conv1_1 at torchvision's
    scale), saved as a file of `layout` would hold it: "caffe" converts conv1_1 to BGR 0..255
    input. `names` (default: the layout's own) are the key names; the authors'
    vgg16_from_caffe.pth is layout "caffe" with torchvision's names."""
    names = names or layout
    g = torch.Generator().manual_seed(0)
    prefixes = (
        [f"features.{i}" for i in TORCHVISION_CONV_INDICES]
        if names == "torchvision"
        else CAFFE_NAMES
    )
    state = {}
    for name, (out_ch, in_ch) in zip(prefixes, CONV_SHAPES, strict=True):
        state[f"{name}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * 0.2
        state[f"{name}.bias"] = torch.randn(out_ch, generator=g)
    if layout == "caffe":  # W_bgr[c] = W_rgb[2 − c] / (255·σ_c): the same filters on 0..255 BGR
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        state[f"{prefixes[0]}.weight"] = (state[f"{prefixes[0]}.weight"] / (255 * std)).flip(1)
    fc = ["classifier.0", "classifier.3", "classifier.6"]
    if names == "caffe":
        fc = ["fc6", "fc7", "fc8"]
    # Linear layers, as both layouts store them; fc8 (ImageNet classes) must be ignored.
    for name, shape in zip(fc, [(4096, 25088), (4096, 4096), (1000, 4096)], strict=True):
        state[f"{name}.weight"] = torch.randn(*shape, generator=g)
        state[f"{name}.bias"] = torch.randn(shape[0], generator=g)
    return state


@pytest.fixture(scope="module")
def full_model():
    return build_model(ModelConfig(width=1.0))


@pytest.mark.parametrize(
    ("layout", "names"),
    [("torchvision", "torchvision"), ("caffe", "caffe"), ("caffe", "torchvision")],
    ids=["torchvision", "caffe", "authors-vgg16_from_caffe"],
)
def test_every_file_of_one_set_of_weights_gives_the_same_f(tmp_path, full_model, layout, names):
    state = vgg16_state(layout, names)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    assert load_vgg16_weights(full_model, path) == layout  # read from conv1_1, not the keys

    reference = vgg16_state("torchvision")  # the same weights, for normalized RGB input
    torch.testing.assert_close(full_model.blocks[0][0].weight, reference["features.0.weight"])
    torch.testing.assert_close(full_model.blocks[0][0].bias, reference["features.0.bias"])
    torch.testing.assert_close(full_model.blocks[4][4].weight, reference["features.28.weight"])
    fc6, fc7 = reference["classifier.0.weight"], reference["classifier.3.weight"]
    torch.testing.assert_close(full_model.fc6.weight, fc6.view(4096, 512, 7, 7))
    torch.testing.assert_close(full_model.fc7.weight, fc7.view(4096, 4096, 1, 1))


def test_a_given_layout_that_the_file_contradicts_is_refused(tmp_path, full_model):
    torch.save(vgg16_state("caffe", "torchvision"), tmp_path / "vgg16_from_caffe.pth")
    with pytest.raises(WeightImportError, match="--vgg-layout torchvision disagrees"):
        load_vgg16_weights(full_model, tmp_path / "vgg16_from_caffe.pth", "torchvision")
    torch.save(vgg16_state("torchvision"), tmp_path / "tv.pth")
    with pytest.raises(WeightImportError, match="--vgg-layout caffe disagrees"):
        load_vgg16_weights(full_model, tmp_path / "tv.pth", "caffe")
    assert load_vgg16_weights(full_model, tmp_path / "tv.pth", "torchvision") == "torchvision"


def test_statistics_that_say_nothing_need_the_layout_given(tmp_path, full_model):
    state = vgg16_state("torchvision")
    state["features.0.weight"] = state["features.0.weight"] / 0.2 * 0.03  # between the bounds
    torch.save(state, tmp_path / "unclear.pth")
    with pytest.raises(WeightImportError, match="give --vgg-layout torchvision or"):
        load_vgg16_weights(full_model, tmp_path / "unclear.pth")
    assert load_vgg16_weights(full_model, tmp_path / "unclear.pth", "caffe") == "caffe"


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
