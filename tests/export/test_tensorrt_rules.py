"""The labels graph obeys TensorRT's rules for uint8, and the TensorRT build helpers handle what
TensorRT hands back. TensorRT itself cannot run here: these check the graph and the calls."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, shape_inference

from genadapt.export.onnx_export import ExportError
from genadapt.export.tensorrt_build import apply_timing_cache, check_tensorrt_version
from genadapt.onnx_graph import export_graph
from genadapt.runtime.onnx_backend import OnnxSegmenter

from helpers import make_checkpoint


def element_types(proto: onnx.ModelProto) -> dict[str, int]:
    graph = shape_inference.infer_shapes(proto).graph
    types = {init.name: init.data_type for init in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        types[info.name] = info.type.tensor_type.elem_type
    return types


@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_uint8_enters_and_leaves_the_labels_graph_only_through_casts(upsample):
    checkpoint = make_checkpoint(seed=1)
    spec = checkpoint.spec.replace(upsample=upsample)
    graph = export_graph(checkpoint.build_model(), "labels", spec)
    proto = onnx.load_from_string(graph.data)
    types = element_types(proto)
    (image,), (labels,) = proto.graph.input, proto.graph.output
    assert types[image.name] == types[labels.name] == TensorProto.UINT8
    for node in proto.graph.node:
        uint8_inputs = [name for name in node.input if types.get(name) == TensorProto.UINT8]
        if uint8_inputs:  # TensorRT: a uint8 network input goes straight into a Cast
            assert node.op_type == "Cast" and uint8_inputs == [image.name], node
        if node.op_type == "Cast":
            to = next(a.i for a in node.attribute if a.name == "to")
            if to == TensorProto.UINT8:  # and uint8 comes only from float or int32
                assert types[node.input[0]] in (TensorProto.FLOAT, TensorProto.INT32), node
    producer = next(n for n in proto.graph.node if labels.name in n.output)
    assert producer.op_type == "Cast"
    # The reordered graph still gives the labels PyTorch gives.
    batch = np.random.default_rng(0).integers(0, 256, (2, 32, 64, 3), dtype=np.uint8)
    from genadapt.runtime import TorchSegmenter

    expected = TorchSegmenter.from_checkpoint(checkpoint, upsample=upsample).run(batch, (128, 64))
    got = OnnxSegmenter.from_graph(graph, spec).run(batch, (128, 64))
    assert (got == expected).mean() > 0.999


def test_only_tensorrt_10_builds_engines():
    check_tensorrt_version("10.5.0")
    for version in ("8.6.1", "11.0.0"):
        with pytest.raises(ExportError, match="TensorRT 10"):
            check_tensorrt_version(version)


class FakeConfig:
    """A TensorRT builder config whose set_timing_cache refuses caches it is told to refuse."""

    def __init__(self, refuse: set[bytes]):
        self.refuse, self.applied = refuse, []

    def create_timing_cache(self, data: bytes):
        return data

    def set_timing_cache(self, cache: bytes, ignore_mismatch: bool) -> bool:
        if cache in self.refuse:
            return False
        self.applied.append(cache)
        return True


def test_a_timing_cache_from_another_gpu_is_replaced_not_ignored(tmp_path, caplog):
    stale = tmp_path / "timing.cache"
    stale.write_bytes(b"from another GPU")
    config = FakeConfig(refuse={b"from another GPU"})
    apply_timing_cache(config, stale)
    assert config.applied == [b""] and "another GPU" in caplog.text
    good = FakeConfig(refuse=set())
    apply_timing_cache(good, stale)
    assert good.applied == [b"from another GPU"]
    apply_timing_cache(good, None)
    assert good.applied[-1] == b""
    with pytest.raises(ExportError):
        apply_timing_cache(FakeConfig(refuse={b"", b"from another GPU"}), stale)
