"""Checkpoint loading: ours round-trips; official layouts map explicitly; bad files fail clearly."""
import pytest
import torch

from endolib.models import create_model, load_model, load_pretrained, save_checkpoint


def _model(num_classes=3, img=32, seed=0):
    torch.manual_seed(seed)
    return create_model("endomamba_nano", img_size=img, num_classes=num_classes)


def test_our_checkpoint_round_trip(tmp_path):
    m = _model()
    save_checkpoint(m, tmp_path / "ck.pth", epoch=3)
    m2 = load_model(tmp_path / "ck.pth")
    for k, v in m.state_dict().items():
        torch.testing.assert_close(m2.state_dict()[k], v)
    x = torch.randn(1, 3, 2, 32, 32)
    torch.testing.assert_close(m2.eval()(x), m.eval()(x))


def test_official_pretraining_layout(tmp_path):
    """{'model': {'encoder.*': ..., 'decoder.*': ...}} with a 2-D patch weight and a longer pos_embed."""
    src = _model(num_classes=0, seed=1)
    sd = {f"encoder.{k}": v.clone() for k, v in src.state_dict().items()}
    sd["encoder.patch_embed.proj.weight"] = sd["encoder.patch_embed.proj.weight"][:, :, 0]
    sd["encoder.pos_embed"] = torch.cat([sd["encoder.pos_embed"], torch.randn(1, 3, 96)], dim=1)
    sd["decoder.blocks.0.weight"] = torch.randn(4, 4)
    torch.save({"model": sd, "epoch": 399}, tmp_path / "official.pth")
    dst = _model(num_classes=7, seed=2)
    rep = load_pretrained(dst, tmp_path / "official.pth")
    assert rep.unexpected == ["decoder.blocks.0.weight"]
    assert sorted(rep.missing) == ["head.bias", "head.weight"]
    assert any("inflated" in a for a in rep.adapted) and any("trimmed" in a for a in rep.adapted)
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v)


def test_ddp_prefix_and_head_of_another_size_is_skipped():
    src = _model(num_classes=5, seed=3)
    sd = {"module": {f"module.{k}": v for k, v in src.state_dict().items()}}
    dst = _model(num_classes=2, seed=4)
    rep = load_pretrained(dst, sd)
    assert sorted(rep.skipped) == ["head.bias", "head.weight"] and rep.unexpected == []
    torch.testing.assert_close(dst.state_dict()["norm_f.weight"], src.state_dict()["norm_f.weight"])


def test_pos_embed_of_another_grid_is_interpolated():
    src = _model(img=64, seed=5)           # 4x4 grid
    dst = _model(img=32, seed=6)           # 2x2 grid
    rep = load_pretrained(dst, src.state_dict())
    assert any("interpolated 4x4 -> 2x2" in a for a in rep.adapted)
    torch.testing.assert_close(dst.pos_embed[:, 0], src.pos_embed[:, 0])


def test_checkpoint_of_another_size_fails_with_shapes():
    with pytest.raises(ValueError, match="shape mismatches"):
        load_pretrained(_model(), create_model("endomamba_tiny", img_size=32).state_dict())


def test_strict_reports_missing():
    sd = _model().state_dict()
    del sd["norm_f.weight"]
    with pytest.raises(ValueError, match="norm_f.weight"):
        load_pretrained(_model(), sd, strict=True)


def test_bad_files(tmp_path):
    good = tmp_path / "good.pth"
    save_checkpoint(_model(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_pretrained(_model(), truncated)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_pretrained(_model(), empty)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pretrained(_model(), tmp_path / "nope.pth")
    torch.save({"epoch": 3, "args": {"lr": 1.0}}, tmp_path / "no_tensors.pth")
    with pytest.raises(ValueError, match="not a model checkpoint"):
        load_pretrained(_model(), tmp_path / "no_tensors.pth")
    with pytest.raises(ValueError, match="not an endolib checkpoint"):
        torch.save(_model().state_dict(), tmp_path / "bare.pth")
        load_model(tmp_path / "bare.pth")
