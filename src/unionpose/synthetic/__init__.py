"""The synthetic people benchmark: procedural figures in cluttered scenes, written as COCO-17 and MPII-16 datasets.

Real COCO and MPII cannot be downloaded here; these people have every one of the 21 union points, so the unified
skeleton's experiment (Khan et al. 2024) runs end to end on a laptop. `scene` draws one image, `dataset_files` writes
the annotation files, `generate` makes the whole set (`unionpose synth`).
"""
from unionpose.synthetic.generate import generate, image_name, image_rng
from unionpose.synthetic.scene import PRESETS, SynthParams, SynthPerson, is_annotated, preset_name, render_image

__all__ = ["PRESETS", "SynthParams", "SynthPerson", "generate", "image_name", "image_rng", "is_annotated", "preset_name", "render_image"]
