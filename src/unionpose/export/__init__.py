"""Deployment: ONNX export with the model description in the graph metadata, and the PyTorch/ONNX parity check."""
