"""The KL-discrete loss against the formula written out in NumPy, its weighting, and the GT objective."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from unionpose.distill import GroundTruthObjective, kl_discrete_loss
from unionpose.models import RTMPose


def numpy_reference(logits_x, logits_y, target_x, target_y, weight, scale):
    """RTMPose's KL-discrete loss spelled out: per axis KL(softmax(scale t) || softmax(scale s)) averaged over bins,
    x weight, summed over batch and keypoints, x + y, divided by K."""
    def softmax(a):
        e = np.exp(a - a.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    total = 0.0
    for logits, target in ((logits_x, target_x), (logits_y, target_y)):
        p, q = softmax(scale * target), softmax(scale * logits)
        kl = (p * (np.log(p) - np.log(q))).mean(axis=-1)
        total += (kl * weight).sum()
    return total / logits_x.shape[1]


def random_inputs(seed=0, n=3, k=5, wx=24, wy=32):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(n, k, wx)), rng.normal(size=(n, k, wy)),
              rng.uniform(size=(n, k, wx)), rng.uniform(size=(n, k, wy)), rng.integers(0, 2, size=(n, k)) * 1.0]
    return arrays, [torch.tensor(a, dtype=torch.float64) for a in arrays]


def test_matches_the_formula():
    arrays, tensors = random_inputs()
    for scale in (1.0, 10.0):
        expected = numpy_reference(*arrays, scale=scale)
        assert float(kl_discrete_loss(*tensors, logit_scale=scale)) == pytest.approx(expected, rel=1e-5)


def test_zero_weight_removes_a_keypoint_and_its_gradient():
    _, (lx, ly, tx, ty, w) = random_inputs(1)
    w = torch.ones_like(w)
    w[:, 2] = 0.0
    lx.requires_grad_(True)
    base = kl_discrete_loss(lx, ly, tx, ty, w)
    base.backward()
    assert lx.grad[:, 2].abs().max() == 0 and lx.grad[:, 1].abs().max() > 0
    changed = lx.detach().clone()
    changed[:, 2] += 5.0
    assert float(kl_discrete_loss(changed, ly, tx, ty, w).detach()) == pytest.approx(float(base.detach()), rel=1e-12)


def test_low_precision_logits_are_scored_in_float32():
    _, (lx, ly, tx, ty, w) = random_inputs(5)
    full = kl_discrete_loss(lx.float(), ly.float(), tx.float(), ty.float(), w.float())
    half = kl_discrete_loss(lx.bfloat16(), ly.bfloat16(), tx.float(), ty.float(), w.float())
    assert half.dtype == torch.float32 and float(half) == pytest.approx(float(full), rel=0.05)


def test_summed_over_the_batch_divided_by_keypoints():
    _, tensors = random_inputs(2)
    single = kl_discrete_loss(*tensors)
    doubled = kl_discrete_loss(*(torch.cat([t, t]) for t in tensors))
    assert float(doubled) == pytest.approx(2 * float(single), rel=1e-12)


def test_prediction_equal_to_target_costs_nothing():
    _, (lx, ly, tx, ty, w) = random_inputs(3)
    assert float(kl_discrete_loss(tx, ty, tx, ty, torch.ones_like(w))) == pytest.approx(0.0, abs=1e-12)
    assert float(kl_discrete_loss(lx, ly, tx, ty, torch.ones_like(w))) > 0


def test_shape_mismatch_is_a_clear_error():
    _, (lx, ly, tx, ty, w) = random_inputs(4)
    with pytest.raises(ValueError, match="same shapes"):
        kl_discrete_loss(lx[:, :, :-1], ly, tx, ty, w)
    with pytest.raises(ValueError, match="weight must be"):
        kl_discrete_loss(lx, ly, tx, ty, w[:, :-1])


def test_ground_truth_objective_trains_a_model():
    torch.manual_seed(0)
    model = RTMPose("t", 4, (64, 32))
    batch = {"image": torch.randn(2, 3, 64, 32), "target_x": torch.rand(2, 4, 64), "target_y": torch.rand(2, 4, 128),
             "target_weight": torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]])}
    terms = GroundTruthObjective(logit_scale=10.0)(model, batch, epoch=0, max_epochs=1)
    assert set(terms) == {"loss"} and terms["loss"].ndim == 0
    terms["loss"].backward()
    assert model.head.cls_x.weight.grad.abs().sum() > 0
