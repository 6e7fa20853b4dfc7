"""KUMC detection: head shapes, target encode/decode round trip, NMS, P/R/F1 matching, tiny run."""
import numpy as np
import pytest
import torch

from endolib.models import create_model
from endolib.tasks import detection as det
from endolib.tasks.common import collate_keep_lists
from endolib.tasks.engine import FitConfig, fit


def _backbone(seed=0):
    torch.manual_seed(seed)
    return create_model("endomamba_nano", num_classes=0, img_size=32)


def test_boxmask_head_encode_decode_round_trip():
    model = det.build_model(_backbone()).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 3, 32, 32))
    assert model.head.stride == 2 and out["boxmask"].shape == (6, 1, 16, 16)
    boxes = [torch.tensor([[2.0, 4.0, 10.0, 12.0], [20.0, 2.0, 30.0, 26.0]]), torch.zeros(0, 4)]
    target = det.box_masks(boxes, (16, 16), stride=2)
    assert target[0].sum() == 16 + 60 and target[1].sum() == 0
    dec = det.decode({"boxmask": (target * 2 - 1) * 20}, stride=2)
    got = dec[0]["boxes"][dec[0]["boxes"][:, 0].argsort()]
    assert torch.equal(got, boxes[0]) and len(dec[1]["boxes"]) == 0
    regions = det.components(np.array([[1, 1, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0]], dtype=bool))
    assert sorted(len(r[0]) for r in regions) == [1, 2, 3]
    with pytest.raises(ValueError, match="class-agnostic"):
        det.build_model(_backbone(), num_classes=2)


def test_head_shapes():
    model = det.build_model(_backbone(), head="centernet").eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 3, 32, 32))
    assert model.head.stride == 4
    assert out["heat"].shape == (6, 1, 8, 8) and out["size"].shape == (6, 2, 8, 8)
    assert out["offset"].shape == (6, 2, 8, 8)


def test_encode_then_decode_recovers_the_boxes():
    boxes = [torch.tensor([[3.0, 5.0, 15.0, 13.0], [40.0, 30.0, 60.0, 58.0]]), torch.zeros(0, 4),
             torch.tensor([[20.5, 22.0, 31.0, 45.5]])]
    tgt = det.encode_targets(boxes, None, (16, 16), stride=4, num_classes=1)
    assert (tgt["heat"] == 1).sum() == 3 and tgt["weight"][1].sum() == 0
    # every cell that learns a box points at that box's centre and carries its size
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    big = (tgt["weight"][0] > 0) & (xs > 6)  # cells of the second box of frame 0: centre (12.5, 11), 5x7 cells
    assert big.sum() > 4
    assert torch.allclose((xs + tgt["offset"][0, 0])[big], torch.full((int(big.sum()),), 12.5))
    assert torch.allclose((ys + tgt["offset"][0, 1])[big], torch.full((int(big.sum()),), 11.0))
    assert torch.allclose(tgt["size"][0, 0][big].exp(), torch.full((int(big.sum()),), 5.0))
    out = {"heat": torch.logit(tgt["heat"].clamp(1e-6, 1 - 1e-6)), "size": tgt["size"], "offset": tgt["offset"]}
    dec = det.decode(out, stride=4, score_thr=0.99)
    for got, want in zip(dec, boxes):
        order = got["boxes"][:, 0].argsort()
        assert torch.allclose(got["boxes"][order], want[want[:, 0].argsort()], atol=1e-4)
    assert len(dec[1]["boxes"]) == 0


def test_nms_hand_case():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    assert det.nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert det.nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _prf_reference(preds, gts, thr, score_thr):
    # plain loops: each prediction, best score first, takes the unmatched truth box of highest IoU
    tp = npred = ngt = 0
    for p, g in zip(preds, gts):
        order = sorted([i for i in range(len(p["scores"])) if p["scores"][i] >= score_thr],
                       key=lambda i: -float(p["scores"][i]))
        npred, ngt, taken = npred + len(order), ngt + len(g), set()
        for i in order:
            best, bj = -1.0, None
            for j in range(len(g)):
                if j not in taken and _iou(p["boxes"][i].tolist(), g[j].tolist()) > best:
                    best, bj = _iou(p["boxes"][i].tolist(), g[j].tolist()), j
            if bj is not None and best >= thr:
                taken.add(bj)
                tp += 1
    prec, rec = (tp / npred if npred else 0.0), (tp / ngt if ngt else 0.0)
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def _random_boxes(g, k):
    xy = torch.rand(k, 2, generator=g) * 40
    return torch.cat([xy, xy + 5 + torch.rand(k, 2, generator=g) * 20], 1)


def test_precision_recall_f1_equal_reference():
    g = torch.Generator().manual_seed(4)
    for _ in range(4):
        gts, preds = [], []
        for _ in range(6):
            gt = _random_boxes(g, int(torch.randint(0, 3, (1,), generator=g)))
            jitter = gt + torch.randn(gt.shape, generator=g) * 3
            jitter = torch.cat([torch.minimum(jitter[:, :2], jitter[:, 2:]), torch.maximum(jitter[:, :2], jitter[:, 2:])], 1)
            extra = _random_boxes(g, int(torch.randint(0, 3, (1,), generator=g)))
            pb = torch.cat([jitter, extra])
            gts.append(gt)
            preds.append({"boxes": pb, "scores": torch.rand(len(pb), generator=g)})
        got = det.scores(preds, gts, score_thr=0.3)
        ref = _prf_reference(preds, gts, 0.5, 0.3)
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(ref, abs=1e-12)
    # hand case: one hit, one duplicate (FP), one miss -> P 1/2, R 1/2
    hand = det.scores([{"boxes": torch.tensor([[0, 0, 10, 10.], [0, 0, 10, 10.5]]), "scores": torch.tensor([.9, .8])}],
                      [torch.tensor([[0, 0, 10, 10.], [30, 30, 40, 40.]])])
    assert hand == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "frame_f1": 1.0})
    # frame level: a frame without truth but with a confident box is a false alarm
    two = det.scores([{"boxes": torch.tensor([[0, 0, 5, 5.]]), "scores": torch.tensor([.9])},
                      {"boxes": torch.tensor([[0, 0, 5, 5.]]), "scores": torch.tensor([.2])}],
                     [torch.zeros(0, 4), torch.tensor([[20, 20, 30, 30.]])], score_thr=0.3)
    assert two["frame_f1"] == 0.0 and two["f1"] == 0.0


def test_trivial_baselines():
    gts = [torch.tensor([[8.0, 8.0, 24.0, 24.0]]), torch.tensor([[0.0, 0.0, 10.0, 10.0]])]
    base = det.trivial_baselines(gts, gts, img_size=32)
    assert base["none_f1"] == 0.0 and base["none_recall"] == 0.0 and base["none_frame_f1"] == 0.0
    assert base["centre_frame_f1"] == 1.0
    # mean size 13x13 centred at 16: IoU with the first box = 169/256 -> 1 hit of 2
    assert base["centre_precision"] == pytest.approx(0.5) and base["centre_recall"] == pytest.approx(0.5)


class BlobClips(torch.utils.data.Dataset):
    def __init__(self, n=12, frames=2, size=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.videos = torch.randn(n, 3, frames, size, size, generator=g) * 0.4
        self.boxes = []
        for i in range(n):
            s = int(torch.randint(8, 13, (1,), generator=g))
            r, c = torch.randint(0, size - s, (2,), generator=g).tolist()
            self.videos[i, 1, :, r:r + s, c:c + s] += 2.0
            self.boxes.append([torch.tensor([[float(c), float(r), float(c + s), float(r + s)]])] * frames)

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return {"video": self.videos[i], "boxes": self.boxes[i]}


@pytest.mark.parametrize("mode,head", [("linear", "centernet"), ("finetune", "centernet"), ("linear", "boxmask")])
def test_tiny_run_loss_falls(mode, head):
    data = BlobClips()
    model = det.build_model(_backbone(), head=head)
    cfg = FitConfig(mode=mode, epochs=8, batch_size=4, lr=5e-3, backbone_lr_mult=1.0, warmup_steps=1,
                    log_every=3, progress=False)
    res = fit(model, data, det.loss_fn, cfg, collate_fn=collate_keep_lists)
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    assert np.isfinite(losses).all()
