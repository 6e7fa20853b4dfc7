"""Clip action recognition: head shape, top-1 vs scikit-learn, majority baseline, a tiny training run."""
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from endolib.models import create_model
from endolib.tasks import action
from endolib.tasks.engine import FitConfig, fit

IMG = 32


def _model(k=4, seed=0):
    torch.manual_seed(seed)
    return action.ClipClassifier(create_model("endomamba_nano", num_classes=0, img_size=IMG), k)


def test_head_shape_and_pooling_over_time():
    m = _model(16).eval()
    x = torch.randn(3, 3, 4, IMG, IMG)
    with torch.no_grad():
        out = m(x)
        ref = m.head(m.norm(m.backbone(x).mean(1)))
    assert out.shape == (3, 16)
    assert torch.allclose(out, ref, atol=1e-6)
    with pytest.raises(ValueError, match="num_classes=0"):
        action.ClipClassifier(create_model("endomamba_nano", num_classes=5, img_size=IMG), 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top1_matches_sklearn_and_majority(seed):
    rng = np.random.default_rng(seed)
    true, pred = rng.integers(0, 16, 50), rng.integers(0, 16, 50)
    assert action.top1(true, pred) == pytest.approx(accuracy_score(true, pred))
    labels = rng.integers(0, 5, 40)
    assert action.majority_class(labels) == int(np.argmax(np.bincount(labels)))
    with pytest.raises(ValueError, match="equal, non-empty"):
        action.top1(true, pred[:-1])


class ColourActions(torch.utils.data.Dataset):
    """Clips tinted by their class, with noise: a learnable clip-level signal."""

    def __init__(self, n=16, t=3, k=3, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, k, (n,), generator=g)
        tint = torch.linspace(-1.5, 1.5, k)
        self.videos = 0.3 * torch.randn(n, 3, t, IMG, IMG, generator=g) + tint[self.labels][:, None, None, None, None]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"video": self.videos[i], "label": self.labels[i]}


def test_tiny_training_run_loss_falls_and_predict():
    m = _model(3)
    ds = ColourActions()
    res = fit(m, ds, action.action_loss, FitConfig(mode="finetune", epochs=8, batch_size=4, lr=3e-3,
                                                   log_every=1, device="cpu", progress=False))
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    true, pred, probs = action.predict(m, ds, batch_size=5)
    assert true.shape == pred.shape == (len(ds),) and probs.shape == (len(ds), 3)
    assert action.top1(true, pred) > 0.6


def test_cached_clips_linear_probe_equals_the_clip_forward():
    m = _model(3)
    ds = ColourActions(n=10)
    cache = action.CachedClips(m, ds, batch_size=4)
    with torch.no_grad():
        ref = m.eval().clip_features(ds.videos)
    assert torch.allclose(cache.feats, ref, atol=1e-5) and torch.equal(cache.labels, ds.labels)
    res = fit(m, cache, action.loss_fn, FitConfig(mode="linear", epochs=15, batch_size=5, lr=3e-2, log_every=1,
                                                  device="cpu", progress=False))
    losses = [r["value"] for r in res.history if r["metric"] == "loss"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert all(not p.requires_grad for p in m.backbone.parameters())


def test_grid_pool_keeps_token_positions_and_views_multiply_the_cache():
    torch.manual_seed(0)
    bb = create_model("endomamba_nano", num_classes=0, img_size=IMG)
    m = action.ClipClassifier(bb, 4, pool="grid").eval()
    x = torch.randn(2, 3, 3, IMG, IMG)
    with torch.no_grad():
        feats = m.clip_features(x)
        ref = bb.forward_features(x).mean(1).flatten(1)
    assert feats.shape == (2, bb.num_tokens * bb.embed_dim) and torch.allclose(feats, ref, atol=1e-6)
    assert m(x).shape == (2, 4)
    with pytest.raises(ValueError, match="pool"):
        action.ClipClassifier(bb, 4, pool="max")
    cache = action.CachedClips(_model(3), ColourActions(n=6), batch_size=4, views=2)
    assert len(cache) == 12 and torch.equal(cache.labels[:6], cache.labels[6:])
