"""The DOPE recipe end to end at toy size: Holistic pseudo-labels + real COCO-17 labels -> a 133-point student."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import FIXTURES, REPO, require

from unionpose.cli import main
from unionpose.core.images import load_image
from unionpose.data.mixture import UnionMixture
from unionpose.engine.config import load_config
from unionpose.infer.backends import load_pose_model
from unionpose.infer.topdown import TopDownRunner
from unionpose.models.model_file import read_model_info

pytest.importorskip("mediapipe")
pytestmark = [pytest.mark.experts, pytest.mark.slow]

COCO = FIXTURES / "coco"
RECIPE = REPO / "configs" / "dope" / "dope_wholebody_mini.yaml"


def tiny_recipe(tmp_path, labels) -> dict:
    """The shipped mini recipe, pointed at the 4-photo fixture and shrunk to one epoch of 64x64 crops."""
    recipe = yaml.safe_load(RECIPE.read_text())
    real, pseudo = recipe["data"]["train"][:2]          # the COCO-17 labels and their photos' pseudo-labels
    real.update(annotations=str(COCO / "person_keypoints.json"), images=str(COCO / "images"))
    pseudo.update(annotations=str(labels), images=str(COCO / "images"))
    recipe["data"]["train"] = [real, pseudo]
    recipe["data"]["val"][0].update(annotations=str(COCO / "coco_wholebody.json"), images=str(COCO / "images"))
    recipe["model"]["input"] = [64, 64]
    recipe["train"].update(epochs=1, batch_size=4, workers=0, warmup_iters=2, cosine_from_epoch=None,
                           tensorboard=False, device="cpu")
    recipe["data"]["mild_last_epochs"] = 0
    recipe["output"] = str(tmp_path / "run")
    return recipe


def test_pseudolabels_mixed_with_real_labels_train_a_wholebody_student(tmp_path, capsys):
    labels = tmp_path / "labels" / "fixture.json"
    assert main(["pseudolabel", str(require(COCO / "images")), "--boxes", str(COCO / "person_keypoints.json"),
                 "--out", str(labels), "--quiet"]) == 0
    config_path = tmp_path / "dope.yaml"
    config_path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, labels)))

    # The mixture: real labels annotate the body alone, pseudo-labels the body and the parts Holistic found.
    config = load_config(config_path)
    mixture = UnionMixture(config.data.train, config.skeleton)
    assert mixture.skeleton.name == "coco_wholebody133"
    real, pseudo = (mixture.instances[entry.start:entry.stop] for entry in mixture.datasets)
    assert real and all(i.annotated[:17].all() and not i.annotated[17:].any() for i in real)
    assert len(pseudo) >= 10
    assert any(i.annotated[91:133].any() for i in pseudo) and any(i.annotated[23:91].all() for i in pseudo)
    assert not any(i.visible[[18, 21]].any() for i in pseudo)        # the small toes: no expert gives them

    capsys.readouterr()
    assert main(["train", str(config_path)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index('{\n "run_dir"'):])
    assert summary["steps"] == len(mixture.instances) // 4         # one epoch, every person once, batches of 4
    final = tmp_path / "run" / "final.safetensors"
    info = read_model_info(final)
    assert info.skeleton.name == "coco_wholebody133" and info.skeleton.num_keypoints == 133
    assert info.model_size == "t" and tuple(info.input_size) == (64, 64)

    backend, info = load_pose_model(final)
    image = load_image(str(COCO / "images" / "000000000785.jpg"))
    keypoints, scores = TopDownRunner(backend, info).predict(image, np.array([[280.0, 44.0, 218.0, 346.0]]))
    assert keypoints.shape == (1, 133, 2) and scores.shape == (1, 133) and np.isfinite(keypoints).all()
