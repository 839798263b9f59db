"""The runtime core: what every layer above stands on, with no torch and nothing imported from above.

Skeletons live beside it in `unionpose.skeletons`. Here: shared constants, the SimCC codec, image decoding and the
top-down transforms, the model-description codec (model files and ONNX exports alike), drawing, the data error type,
atomic writes. See docs/architecture.md.
"""
