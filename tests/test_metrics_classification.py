"""Classification metrics against scikit-learn on fresh seeded random inputs, plus edge cases."""
import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from endolib.metrics import classification as C


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_f1_accuracy_confusion_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=97)
    p = np.where(rng.random(97) < 0.7, y, 1 - y)
    assert C.f1_score(y, p) == pytest.approx(skm.f1_score(y, p), abs=1e-12)
    assert C.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    np.testing.assert_array_equal(C.confusion_matrix(y, p, 2), skm.confusion_matrix(y, p, labels=[0, 1]))
    # torch tensors are accepted the same way
    assert C.f1_score(torch.from_numpy(y), torch.from_numpy(p)) == pytest.approx(skm.f1_score(y, p))


@pytest.mark.parametrize("seed", [3, 4])
def test_macro_f1_multiclass_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, size=200)
    p = np.where(rng.random(200) < 0.5, y, rng.integers(0, 6, size=200))
    assert C.f1_score(y, p, average="macro") == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
    res = C.precision_recall_f1(y, p)
    np.testing.assert_allclose(res["precision"], skm.precision_score(y, p, average=None), atol=1e-12)
    np.testing.assert_allclose(res["recall"], skm.recall_score(y, p, average=None), atol=1e-12)
    np.testing.assert_array_equal(C.confusion_matrix(y, p), skm.confusion_matrix(y, p))


def test_f1_class_absent_and_never_predicted():
    # class 2 never occurs in y_true, class 1 never predicted: sklearn zero_division=0 convention
    y = np.array([0, 0, 1, 1, 0])
    p = np.array([0, 2, 0, 0, 0])
    expected = skm.f1_score(y, p, average="macro", zero_division=0)
    assert C.f1_score(y, p, average="macro") == pytest.approx(expected)
    assert C.f1_score(y, p) == 0.0  # positive class 1 never predicted
    assert C.f1_score([0, 0, 0], [0, 0, 0]) == 0.0


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_auroc_with_ties_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=150)
    s = np.round(rng.random(150) + 0.4 * y, 1)  # rounding creates many ties
    assert C.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_auroc_multiclass_one_vs_rest():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 4, size=120)
    s = rng.random((120, 4)) + np.eye(4)[y] * 0.5
    per = C.auroc(y, s, average=None)
    ref = [skm.roc_auc_score(y == k, s[:, k]) for k in range(4)]
    np.testing.assert_allclose(per, ref, atol=1e-12)
    assert C.auroc(y, s) == pytest.approx(np.mean(ref))


def test_auroc_single_class_raises():
    with pytest.raises(ValueError, match="both classes"):
        C.auroc([1, 1, 1], [0.2, 0.3, 0.4])


def test_top_k_accuracy_matches_sklearn():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 10, size=80)
    s = rng.random((80, 10))
    for k in (1, 3, 5):
        ref = skm.top_k_accuracy_score(y, s, k=k, labels=np.arange(10))
        assert C.top_k_accuracy(y, s, k=k) == pytest.approx(ref)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same number"):
        C.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="non-integer"):
        C.accuracy([0, 1], [0.2, 0.7])
    with pytest.raises(ValueError, match="num_classes"):
        C.confusion_matrix([0, 3], [0, 1], num_classes=2)
