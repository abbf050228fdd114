"""genadapt.export: ONNX export, TensorRT engines, Triton repositories and the parity gate."""
