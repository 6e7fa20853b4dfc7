"""Probe and recipe plumbing: macro F1 vs sklearn, logistic probe on separable features, stage configs."""
import pytest
import torch

from endolib.models import create_model
from endolib.pretrain.batches import NoiseClips
from endolib.pretrain.config import PretrainConfig
from endolib.pretrain.model import PretrainModel
from endolib.pretrain.probe import clip_features, fit_linear, heldout_reconstruction, macro_f1
from endolib.pretrain.recipe import stage_configs


def test_macro_f1_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randint(0, 3, (50,), generator=g), torch.randint(0, 3, (50,), generator=g)
    assert macro_f1(pred, target, 3) == pytest.approx(metrics.f1_score(target, pred, average="macro"))


def test_fit_linear_separates_separable_classes():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 5, generator=g, dtype=torch.float64)
    y = (x[:, 2] - 0.5 * x[:, 0] > 0).long()
    head = fit_linear(x, y, 2)
    assert (head(x).argmax(-1) == y).double().mean() > 0.95


class _Labelled(NoiseClips):
    def __getitem__(self, i):
        return {**super().__getitem__(i), "label": i % 2}


def test_clip_features_and_heldout_reconstruction():
    torch.manual_seed(2)
    enc = create_model("endomamba_nano", img_size=32)
    feats, labels = clip_features(enc, _Labelled(5, 2, 32), batch_size=2)
    assert feats.shape == (5, 96) and labels.tolist() == [0, 1, 0, 1, 0]
    clips = torch.stack([NoiseClips(4, 2, 32)[i]["video"] for i in range(4)])
    model = PretrainModel(enc, "tiny")
    a = heldout_reconstruction(model, clips, batch_size=3)
    assert a == heldout_reconstruction(model, clips, batch_size=3) and a > 0   # fixed masks: deterministic


def test_stage_configs_chain_general_teacher_into_endoscopy(tmp_path):
    cfgs = stage_configs(PretrainConfig(seed=3), tmp_path, 10, 20)
    assert cfgs["general"].data["domain"] == "generic" and cfgs["general"].teacher["kind"] == "none"
    assert cfgs["endo_teacher"].teacher == {"kind": "endomamba", "path": str(tmp_path / "general" / "encoder.pth")}
    assert cfgs["endo_mvm"].teacher["kind"] == "none" and cfgs["endo_mvm"].total_steps == 20
    assert {c.seed for c in cfgs.values()} == {3}
    assert cfgs["endo_mvm"].data["domain"] == cfgs["endo_teacher"].data["domain"] == "pretrain_corpus"
