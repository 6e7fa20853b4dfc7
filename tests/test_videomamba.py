"""VideoMamba-style model: official key names, checkpoint loading with adaptation, bidirectional whole-clip scan."""
import pytest
import torch

from endolib.models.videomamba import create_videomamba, load_videomamba

OFFICIAL_TOP_KEYS = {"cls_token", "pos_embed", "temporal_pos_embedding", "patch_embed.proj.weight",
                     "patch_embed.proj.bias", "norm_f.weight", "head.weight", "head.bias"}
OFFICIAL_MIXER_KEYS = {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight",
                       "dt_proj.bias", "A_log", "D", "out_proj.weight", "conv1d_b.weight", "conv1d_b.bias",
                       "x_proj_b.weight", "dt_proj_b.weight", "dt_proj_b.bias", "A_b_log", "D_b"}


def test_parameter_names_match_official_layout():
    m = create_videomamba("videomamba_nano", img_size=32, num_frames=2, num_classes=5)
    keys = set(m.state_dict())
    assert OFFICIAL_TOP_KEYS <= keys
    assert {k.split("layers.0.mixer.")[1] for k in keys if k.startswith("layers.0.mixer.")} == OFFICIAL_MIXER_KEYS
    assert "layers.3.norm.weight" in keys and m.temporal_pos_embedding.shape == (1, 2, 96)


def test_whole_clip_is_scanned_both_ways():
    torch.manual_seed(0)
    m = create_videomamba("videomamba_nano", img_size=32, num_frames=3).eval()
    x = torch.randn(1, 3, 3, 32, 32)
    x2 = x.clone()
    x2[:, :, 2] += 1.0                                      # change only the last frame
    a, b = m.forward_tokens(x), m.forward_tokens(x2)
    assert not torch.allclose(a[:, 0], b[:, 0])             # earlier frames see later ones (bidirectional)
    assert m(x).shape == (1, 96)


def _official_like(src, num_frames_ck=8, classes=1000):
    # what a released checkpoint looks like: nested under 'model', 2-D patch weight, another clip length
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    sd["patch_embed.proj.weight"] = sd["patch_embed.proj.weight"][:, :, 0]
    sd["temporal_pos_embedding"] = torch.randn(1, num_frames_ck, src.embed_dim)
    sd["head.weight"], sd["head.bias"] = torch.randn(classes, src.embed_dim), torch.randn(classes)
    sd["some_extra.weight"] = torch.randn(3)
    return {"model": sd, "epoch": 10}


def test_load_official_checkpoint_reports_and_adapts(tmp_path):
    torch.manual_seed(1)
    src = create_videomamba("videomamba_nano", img_size=32, num_frames=4)
    ck = _official_like(src)
    torch.save(ck, tmp_path / "videomamba_n16_k400.pth")
    dst = create_videomamba("videomamba_nano", img_size=32, num_frames=4, num_classes=7)
    rep = load_videomamba(dst, tmp_path / "videomamba_n16_k400.pth")
    assert torch.equal(dst.layers[2].mixer.A_b_log, src.layers[2].mixer.A_b_log)
    assert torch.equal(dst.patch_embed.proj.weight, src.patch_embed.proj.weight)
    assert rep.unexpected == ["some_extra.weight"] and sorted(rep.skipped) == ["head.bias", "head.weight"]
    assert "head.weight" in rep.missing and any("temporal_pos_embedding" in a for a in rep.adapted)
    tp = ck["model"]["temporal_pos_embedding"]
    assert dst.temporal_pos_embedding[0, 0].tolist() != tp[0, 0].tolist()   # interpolated 8 -> 4, not copied
    assert dst.temporal_pos_embedding.shape == (1, 4, 96)


def test_pos_embed_interpolated_and_width_mismatch_rejected():
    torch.manual_seed(2)
    src = create_videomamba("videomamba_nano", img_size=64, num_frames=2)
    dst = create_videomamba("videomamba_nano", img_size=32, num_frames=2)
    rep = load_videomamba(dst, {"module": {f"module.{k}": v for k, v in src.state_dict().items()}})
    assert rep.missing == [] and any("pos_embed" in a for a in rep.adapted)
    assert torch.equal(dst.pos_embed[:, 0], src.pos_embed[:, 0])
    with pytest.raises(ValueError, match="does not fit"):
        load_videomamba(create_videomamba("videomamba_tiny", img_size=32, depth=2, num_frames=2), src.state_dict())
