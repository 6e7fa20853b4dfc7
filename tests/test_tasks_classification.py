"""PolypDiag clip classification: head shapes, metrics vs scikit-learn, baseline, tiny runs, resume."""
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from endolib.models import create_model
from endolib.tasks import classification as cls
from endolib.tasks.engine import FitConfig, fit


def _backbone(seed=0, **kw):
    torch.manual_seed(seed)
    return create_model("endomamba_nano", num_classes=0, img_size=32, **kw)


class SpotClips(torch.utils.data.Dataset):
    """Noisy clips; label 1 clips carry a bright blob somewhere in every frame."""

    def __init__(self, n=16, frames=2, size=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = (torch.arange(n) % 2).tolist()
        self.videos = torch.randn(n, 3, frames, size, size, generator=g) * 0.5
        for i, y in enumerate(self.labels):
            if y:
                r, c = torch.randint(0, size - 12, (2,), generator=g).tolist()
                self.videos[i, 0, :, r:r + 12, c:c + 12] += 2.5

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"video": self.videos[i], "label": self.labels[i]}


def test_head_shapes_and_pooling():
    torch.manual_seed(0)
    head = cls.ClipClassificationHead(24, num_classes=3).eval()
    tok = torch.randn(5, 4, 10, 24)
    assert head(tok).shape == (5, 3)
    assert torch.allclose(head.clip_features(tok), tok.mean(dim=(1, 2)), atol=1e-6)
    assert torch.allclose(cls.ClipClassificationHead(24, pool="cls").clip_features(tok), tok[:, :, 0].mean(1))
    ref_max = torch.stack([torch.stack([tok[b, t, 1:].max(0).values for t in range(4)]).mean(0) for b in range(5)])
    assert torch.allclose(cls.ClipClassificationHead(24, pool="max").clip_features(tok), ref_max)
    model = cls.build_model(_backbone()).eval()
    assert model(torch.randn(2, 3, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(ValueError, match="pool must be"):
        cls.ClipClassificationHead(24, pool="sum")


def test_scores_equal_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.integers(0, 2, 40)
        p1 = rng.random(40)
        probs = np.stack([1 - p1, p1], 1)
        got = cls.scores(y, probs)
        pred = probs.argmax(1)
        assert got["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
        assert got["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
        assert got["auroc"] == pytest.approx(roc_auc_score(y, p1), abs=1e-12)


def test_trivial_baseline_is_the_majority_class():
    base = cls.trivial_baseline([1, 1, 0, 1], [0, 1, 1, 0, 1])
    assert base["majority_class"] == 1
    assert base["accuracy"] == pytest.approx(3 / 5)
    assert base["f1"] == pytest.approx(f1_score([0, 1, 1, 0, 1], [1] * 5))
    assert base["auroc"] == 0.5
    assert cls.trivial_baseline([0, 0, 1], [0, 1])["f1"] == 0.0


@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_tiny_run_loss_falls(mode):
    data = SpotClips()
    model = cls.build_model(_backbone())
    cfg = FitConfig(mode=mode, epochs=6, batch_size=8, lr=5e-3 if mode == "finetune" else 2e-2,
                    backbone_lr_mult=1.0, warmup_steps=1, log_every=2, progress=False)
    res = fit(model, data, cls.loss_fn, cfg, evaluate=lambda m: cls.evaluate(m, data))
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert res.metrics["accuracy"] > 0.75


def test_resume_with_the_real_backbone_is_exact(tmp_path):
    data = SpotClips(n=12)
    cfg = dict(mode="finetune", epochs=2, batch_size=5, lr=1e-3, log_every=1, ckpt_every=2, progress=False)
    ref = cls.build_model(_backbone(drop_path_rate=0.2))
    fit(ref, data, cls.loss_fn, FitConfig(out_dir=str(tmp_path / "a"), **cfg))
    n = {"calls": 0}

    def dies_at_step_4(model, batch):
        n["calls"] += 1
        if n["calls"] == 4:
            raise KeyboardInterrupt
        return cls.loss_fn(model, batch)

    with pytest.raises(KeyboardInterrupt):
        fit(cls.build_model(_backbone(drop_path_rate=0.2)), data, dies_at_step_4,
            FitConfig(out_dir=str(tmp_path / "b"), **cfg))
    again = cls.build_model(_backbone(seed=5, drop_path_rate=0.2))
    fit(again, data, cls.loss_fn, FitConfig(out_dir=str(tmp_path / "b"), **cfg))
    for (k, a), b in zip(ref.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
