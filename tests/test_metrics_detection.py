"""Detection metrics: hand-computed matching cases, a plain-loop reference, sklearn for the frame rule."""
import numpy as np
import pytest
from sklearn import metrics as skm

from endolib.metrics import detection as D


def _iou_loop(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _match_loop(boxes, scores, gts, thr=0.5, score_thr=0.0):
    """Plain-python statement of the rule: by descending score, best still-free GT with IoU >= thr."""
    order = sorted([i for i in range(len(scores)) if scores[i] >= score_thr], key=lambda i: (-scores[i], i))
    used, tp = set(), 0
    for i in order:
        best, best_j = -1.0, None
        for j, g in enumerate(gts):
            if j not in used and _iou_loop(boxes[i], g) > best:
                best, best_j = _iou_loop(boxes[i], g), j
        if best_j is not None and best >= thr:
            used.add(best_j)
            tp += 1
    return tp, len(order) - tp, len(gts) - len(used)


def _random_boxes(rng, n):
    xy = rng.uniform(0, 50, size=(n, 2))
    wh = rng.uniform(4, 25, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_box_iou_matches_loop():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    ref = np.array([[_iou_loop(x, y) for y in b] for x in a])
    np.testing.assert_allclose(D.box_iou(a, b), ref, atol=1e-12)
    assert D.box_iou(a, np.zeros((0, 4))).shape == (7, 0)


def test_hand_case_score_order_and_threshold():
    gts = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 31], [5, 0, 15, 10]])
    scores = np.array([0.9, 0.8, 0.3, 0.95])
    m = D.match_frame(boxes, scores, gts)
    # 0.95 box: IoU 1/3 with A -> FP; 0.9 -> A; 0.8 duplicate of A -> FP; 0.3 -> B (IoU 100/110)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 2, 0)
    assert m["matches"] == [(0, 0), (2, 1)]
    m = D.match_frame(boxes, scores, gts, score_threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 1)


def test_hand_case_greedy_is_by_score_not_by_best_assignment():
    gts = np.array([[0, 0, 10, 10], [5, 0, 15, 10]])
    boxes = np.array([[3, 0, 13, 10], [4, 0, 14, 10]])
    # box 0 (IoU .54 with A, .67 with B) goes first and takes B; box 1 (.43 with A) is then an FP
    m = D.match_frame(boxes, [0.9, 0.8], gts)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    m = D.match_frame(boxes, [0.8, 0.9], gts)   # box 1 first takes B (.82); box 0 gets A (.54)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 0)


def test_iou_threshold_is_inclusive():
    m = D.match_frame([[0, 0, 10, 5]], [0.5], [[0, 0, 10, 10]])   # IoU exactly 0.5
    assert m["tp"] == 1


def test_detection_prf_matches_loop_reference_on_random_frames():
    rng = np.random.default_rng(1)
    preds, gts, counts = [], [], np.zeros(3)
    for _ in range(25):
        g = _random_boxes(rng, int(rng.integers(0, 3)))
        jitter = [gg + rng.normal(0, 2, 4) for gg in g if rng.random() < 0.8]
        b = np.array(jitter + list(_random_boxes(rng, int(rng.integers(0, 3))))).reshape(-1, 4)
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
        s = rng.random(len(b))
        preds.append((b, s))
        gts.append(g)
        counts += _match_loop(b, s, g, score_thr=0.2)
    res = D.detection_prf(preds, gts, score_threshold=0.2)
    tp, fp, fn = counts
    assert (res["tp"], res["fp"], res["fn"]) == (tp, fp, fn)
    p, r = tp / (tp + fp), tp / (tp + fn)
    assert res["precision"] == pytest.approx(p) and res["recall"] == pytest.approx(r)
    assert res["f1"] == pytest.approx(2 * p * r / (p + r))


def test_empty_predictions_and_empty_ground_truth():
    none = np.zeros((0, 4))
    res = D.detection_prf([(none, []), (none, [])], [np.array([[0, 0, 5, 5]]), none])
    assert (res["tp"], res["fp"], res["fn"]) == (0, 0, 1)
    assert res["precision"] == 0.0 and res["recall"] == 0.0 and res["f1"] == 0.0
    res = D.detection_prf([(np.array([[0, 0, 5, 5]]), [0.7])], [none])
    assert (res["tp"], res["fp"], res["fn"]) == (0, 1, 0)
    res = D.detection_prf([(none, [])], [none])
    assert res["f1"] == 0.0 and res["tp"] == res["fp"] == res["fn"] == 0


def test_frame_level_rule_matches_sklearn():
    rng = np.random.default_rng(2)
    has = rng.random(60) < 0.6
    score = np.where(rng.random(60) < 0.15, -np.inf, rng.random(60) * 0.6 + 0.4 * has)
    res = D.frame_detection_prf(score, has, score_threshold=0.5)
    fired = score >= 0.5
    assert res["precision"] == pytest.approx(skm.precision_score(has, fired))
    assert res["recall"] == pytest.approx(skm.recall_score(has, fired))
    assert res["f1"] == pytest.approx(skm.f1_score(has, fired))
    assert res["tn"] == int(np.sum(~fired & ~has))


def test_bad_boxes_raise():
    with pytest.raises(ValueError, match="xyxy"):
        D.box_iou([[5, 5, 1, 1]], [[0, 0, 2, 2]])
    with pytest.raises(ValueError, match="one score per box"):
        D.match_frame([[0, 0, 1, 1]], [0.1, 0.2], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="one entry per frame"):
        D.detection_prf([], [np.zeros((0, 4))])
