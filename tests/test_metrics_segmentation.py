"""Dice / IoU against scikit-learn (F1 and Jaccard of the flattened masks) and the empty-mask rules."""
import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from endolib.metrics import segmentation as S


def _random_masks(seed, n=6, shape=(3, 17, 19)):
    rng = np.random.default_rng(seed)
    target = rng.random((n, *shape)) < 0.3
    noise = rng.random((n, *shape)) < 0.15
    prob = np.clip(target * 0.8 + rng.random((n, *shape)) * 0.4 - 0.1, 0, 1)
    return prob, target, noise


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dice_iou_match_sklearn_per_case(seed):
    prob, target, _ = _random_masks(seed)
    pred = prob > 0.5
    ref_dice = [skm.f1_score(t.ravel(), p.ravel()) for p, t in zip(pred, target)]
    ref_iou = [skm.jaccard_score(t.ravel(), p.ravel()) for p, t in zip(pred, target)]
    np.testing.assert_allclose(S.dice_per_case(prob, target), ref_dice, atol=1e-12)
    np.testing.assert_allclose(S.iou_per_case(prob, target), ref_iou, atol=1e-12)
    assert S.mean_dice(prob, target) == pytest.approx(np.mean(ref_dice))
    assert S.mean_iou(torch.from_numpy(prob), torch.from_numpy(target)) == pytest.approx(np.mean(ref_iou))
    # Dice and IoU of one case are tied: D = 2J / (1 + J)
    j = S.iou_per_case(prob, target)
    np.testing.assert_allclose(S.dice_per_case(prob, target), 2 * j / (1 + j), atol=1e-12)


def test_clip_cases_pool_frames():
    prob, target, _ = _random_masks(3, n=2, shape=(4, 8, 8))
    pooled = S.dice_per_case(prob, target)  # one Dice per clip, all frames pooled
    ref = [skm.f1_score(t.ravel(), (p > 0.5).ravel()) for p, t in zip(prob, target)]
    np.testing.assert_allclose(pooled, ref, atol=1e-12)
    per_frame = S.dice_per_case(prob.reshape(-1, 8, 8), target.reshape(-1, 8, 8))
    assert per_frame.shape == (8,)


def test_empty_mask_conventions():
    full = np.ones((1, 4, 4))
    none = np.zeros((1, 4, 4))
    cases_pred = np.concatenate([none, full, none])    # (empty, empty), (pred only), (gt only)
    cases_gt = np.concatenate([none, none, full])
    np.testing.assert_array_equal(S.dice_per_case(cases_pred, cases_gt, empty="endomamba"), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(S.dice_per_case(cases_pred, cases_gt, empty="standard"), [1.0, 0.0, 0.0])
    out = S.iou_per_case(cases_pred, cases_gt, empty="nan")
    assert np.isnan(out[0]) and out[1] == 0.0 and out[2] == 0.0
    assert S.mean_iou(cases_pred, cases_gt, empty="nan") == 0.0  # NaN case left out of the mean
    assert np.isnan(S.mean_dice(none, none, empty="nan"))


def test_shape_mismatch_and_bad_convention_raise():
    with pytest.raises(ValueError, match="same shape"):
        S.dice_per_case(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="empty must be"):
        S.dice_per_case(np.zeros((2, 4)), np.zeros((2, 4)), empty="zero")
    with pytest.raises(ValueError, match="leading axis"):
        S.dice_per_case(np.zeros(4), np.zeros(4))
