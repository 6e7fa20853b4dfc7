"""CVC-12k segmentation: decoder shapes, Dice/IoU vs a direct numpy formula, baselines, tiny run."""
import numpy as np
import pytest
import torch

from endolib.models import create_model
from endolib.tasks import segmentation as seg
from endolib.tasks.engine import FitConfig, fit


def _backbone(seed=0):
    torch.manual_seed(seed)
    return create_model("endomamba_nano", num_classes=0, img_size=32)


class SquareClips(torch.utils.data.Dataset):
    """Noisy clips with a bright square moving one pixel per frame; its mask is the label."""

    def __init__(self, n=12, frames=2, size=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.videos = torch.randn(n, 3, frames, size, size, generator=g) * 0.4
        self.masks = torch.zeros(n, frames, size, size)
        for i in range(n):
            s = int(torch.randint(8, 14, (1,), generator=g))
            r, c = torch.randint(0, size - s - frames, (2,), generator=g).tolist()
            for t in range(frames):
                self.masks[i, t, r + t:r + t + s, c + t:c + t + s] = 1
        self.videos[:, 1] += 2.0 * self.masks

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return {"video": self.videos[i], "mask": self.masks[i]}


def test_decoder_shapes():
    torch.manual_seed(0)
    head = seg.SegmentationHead(24, grid_size=(2, 3), patch_size=16, width=32)
    assert head(torch.randn(2, 3, 7, 24)).shape == (2, 3, 32, 48)
    model = seg.build_model(_backbone(), width=32).eval()
    assert model(torch.randn(2, 3, 2, 32, 32)).shape == (2, 2, 32, 32)
    with pytest.raises(ValueError, match="tokens per frame"):
        head(torch.randn(2, 3, 9, 24))
    with pytest.raises(ValueError, match="power of two"):
        seg.SegmentationHead(24, (2, 2), patch_size=12)


def _dice_iou_numpy(pred, mask):
    # one case per clip; both non-empty here, so the plain formulas apply
    d, j = [], []
    for p, m in zip(pred, mask):
        inter = np.logical_and(p, m).sum()
        d.append(2 * inter / (p.sum() + m.sum()))
        j.append(inter / np.logical_or(p, m).sum())
    return float(np.mean(d)), float(np.mean(j))


def test_scores_equal_direct_formula_and_baselines():
    rng = np.random.default_rng(1)
    mask = (rng.random((6, 3, 16, 16)) > 0.7).astype(np.uint8)
    probs = rng.random((6, 3, 16, 16)).astype(np.float32)
    d, j = _dice_iou_numpy(probs > 0.5, mask > 0)
    got = seg.scores(mask, probs)
    assert got["dice"] == pytest.approx(d, abs=1e-12) and got["iou"] == pytest.approx(j, abs=1e-12)
    base = seg.trivial_baselines(mask)
    assert base["empty_dice"] == 0.0 and base["empty_iou"] == 0.0
    frac = mask.reshape(6, -1).mean(1)
    assert base["full_dice"] == pytest.approx(np.mean(2 * frac / (frac + 1)))
    assert base["full_iou"] == pytest.approx(frac.mean())


def test_soft_dice_matches_hard_dice_on_confident_logits():
    torch.manual_seed(2)
    mask = (torch.rand(2, 3, 8, 8) > 0.5).float()
    pred = (torch.rand(2, 3, 8, 8) > 0.5).float()
    logits = (pred * 2 - 1) * 50
    inter = (pred * mask).flatten(2).sum(-1)
    hard = 1 - (2 * inter + 1) / (pred.flatten(2).sum(-1) + mask.flatten(2).sum(-1) + 1)
    assert seg.soft_dice_loss(logits, mask) == pytest.approx(float(hard.mean()), abs=1e-6)


@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_tiny_run_loss_falls(mode):
    data = SquareClips()
    model = seg.build_model(_backbone(), width=32)
    cfg = FitConfig(mode=mode, epochs=8, batch_size=4, lr=1e-2, backbone_lr_mult=1.0, warmup_steps=1,
                    log_every=3, progress=False)
    res = fit(model, data, seg.loss_fn, cfg, evaluate=lambda m: seg.evaluate(m, data))
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    full = seg.trivial_baselines(data.masks.numpy())["full_dice"]
    assert res.metrics["dice"] > full + 0.1
