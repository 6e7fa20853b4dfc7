"""Temporal localization: runs, tIoU, segment AP against hand-computed cases and an independent formula."""
import numpy as np
import pytest

from endolib.tasks import localization as loc


def test_runs_and_predicted_segments():
    labels = np.array([2, 2, 0, 0, 0, 1, 2, 2])
    assert loc.runs(labels) == [(2, 0, 2), (0, 2, 5), (1, 5, 6), (2, 6, 8)]
    assert loc.runs(np.array([], int)) == []
    rng = np.random.default_rng(0)
    probs = rng.random((8, 3))
    probs[np.arange(8), labels] += 2.0
    probs /= probs.sum(1, keepdims=True)
    segs = loc.predicted_segments(probs)
    assert [s[:3] for s in segs] == loc.runs(labels)
    for c, s, e, score in segs:
        assert score == pytest.approx(probs[s:e, c].mean())
    assert [s[:3] for s in loc.predicted_segments(probs, min_len=2)] == [(2, 0, 2), (0, 2, 5), (2, 6, 8)]


def test_tiou():
    assert loc.tiou((0, 10), (0, 10)) == 1.0
    assert loc.tiou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert loc.tiou((0, 5), (5, 9)) == 0.0


def test_segment_ap_hand_computed():
    true = np.array([0] * 10 + [1] * 10)
    preds = [(0, 0, 9, 0.9),    # class 0: tIoU 0.9 -> TP
             (0, 12, 20, 0.8),  # class 0: no overlap -> FP
             (1, 0, 3, 0.95),   # class 1: ranked first, no overlap -> FP
             (1, 10, 20, 0.7)]  # class 1: exact -> TP
    ap = loc.segment_ap([true], [preds], num_classes=3)
    # class 0: TP then FP, 1 gt -> AP 1; class 1: FP then TP -> precision 1/2 at recall 1; class 2: no gt
    assert ap[0] == pytest.approx(1.0)
    assert ap[1] == pytest.approx(0.5)
    assert np.isnan(ap[2])


def test_duplicate_detection_is_false_positive_and_iou_threshold():
    true = np.array([0] * 10)
    preds = [(0, 0, 10, 0.9), (0, 1, 10, 0.8)]
    # second detection of the same segment: FP, AP stays 1 (the TP came first)
    assert loc.segment_ap([true], [preds], 1)[0] == pytest.approx(1.0)
    # a detection with tIoU 0.4 is a miss at 0.5 and a hit at 0.3
    short = [(0, 0, 4, 0.9)]
    assert loc.segment_ap([true], [short], 1, iou=0.5)[0] == 0.0
    assert loc.segment_ap([true], [short], 1, iou=0.3)[0] == pytest.approx(1.0)


def _ap_independent(tp, num_gt):
    # AP = (1/num_gt) * sum over TP ranks i of max_{j >= i} precision_j (interpolated precision)
    tp = np.asarray(tp, float)
    prec = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    return sum(prec[i:].max() for i in np.flatnonzero(tp)) / num_gt


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_average_precision_matches_independent_formula(seed):
    rng = np.random.default_rng(seed)
    tp = rng.random(int(rng.integers(5, 40))) < 0.4
    num_gt = int(tp.sum()) + int(rng.integers(0, 4))
    if num_gt == 0:
        num_gt = 1
    assert loc.average_precision(tp, num_gt) == pytest.approx(_ap_independent(tp, num_gt))


def test_localization_scores_perfect_and_constant_baseline():
    rng = np.random.default_rng(5)
    rows = []
    for v in range(3):
        true = np.repeat(rng.permutation(4), rng.integers(3, 9, size=4))
        probs = np.full((len(true), 4), 0.05)
        probs[np.arange(len(true)), true] = 0.85
        rows.append((f"v{v}", true, true.copy(), probs))
    s = loc.localization_scores(rows, 4)
    assert s["frame_accuracy"] == 1.0 and s["segment_mAP@0.5"] == pytest.approx(1.0)
    base = loc.localization_scores(loc.constant_rows(rows, 0, 4), 4)
    assert base["frame_accuracy"] < 0.5 and base["segment_mAP@0.5"] < 0.5


def test_evaluate_online_on_whole_videos_with_model_and_baseline():
    from types import SimpleNamespace

    import torch

    from endolib.models import create_model
    from endolib.tasks.phase import build_model

    torch.manual_seed(0)
    model = build_model(create_model("endomamba_nano", num_classes=0, img_size=32), 3)
    lab = lambda n, s: {"phase": np.repeat(np.arange(3), n)[:: s]}  # noqa: E731
    data = SimpleNamespace(classes=["a", "b", "c"],
                           train_videos=[("t", None, {"phase": np.array([1, 1, 1, 0])})],
                           test_videos=[(f"v{i}", torch.randn(3, 3 * (4 + i), 32, 32), lab(4 + i, 1)) for i in range(2)])
    ev = loc.evaluate_online(model, data, chunk=5, ious=(0.3, 0.5))
    assert ev.majority == 1 and list(ev.sweep.index) == [0.3, 0.5]
    assert set(ev.scores) == set(ev.baseline) == {"frame_accuracy", "segment_mAP@0.5", "segment_mAP@[0.3:0.5]"}
    # the constant baseline covers whole videos: one segment per video, tIoU 1/3 with the true middle run
    assert ev.baseline["frame_accuracy"] == pytest.approx(1 / 3)
    assert ev.baseline["segment_mAP@0.5"] == 0.0
    assert ev.sweep.iloc[0, 1] > 0  # at tIoU 0.3 the whole-video segment matches the middle run
    assert ev.ap.shape == (3,) and ev.table.shape == (3, 2)
