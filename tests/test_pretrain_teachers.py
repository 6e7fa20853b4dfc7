"""Teachers: one interface (frozen, (B, T, N, C_t) on the student's grid), and clear errors when they do not fit."""
import pytest
import torch

from endolib.models import create_model
from endolib.pretrain.teachers import (EncoderTeacher, VideoMambaTeacher, build_teacher, check_fits, load_encoder,
                                       save_encoder)


def _frozen(teacher):
    teacher.train()
    return not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_endomamba_teacher_round_trip(tmp_path):
    torch.manual_seed(0)
    enc = create_model("endomamba_nano", img_size=32)
    save_encoder(enc, tmp_path / "encoder.pth", "endomamba_nano", {"img_size": 32})
    teacher = build_teacher("endomamba", tmp_path / "encoder.pth", student=create_model("endomamba_nano", img_size=32))
    x = torch.randn(2, 3, 3, 32, 32)
    out = teacher(x)
    assert out.shape == (2, 3, 4, 96) and _frozen(teacher)
    torch.testing.assert_close(out, enc.eval().forward_features(x)[:, :, 1:])
    assert torch.equal(load_encoder(tmp_path / "encoder.pth").pos_embed, enc.pos_embed)


def test_videomamba_teacher_tokens_per_frame():
    torch.manual_seed(1)
    teacher = build_teacher("videomamba", None, model_name="videomamba_nano", img_size=32, num_frames=3)
    assert isinstance(teacher, VideoMambaTeacher) and _frozen(teacher)
    x = torch.randn(1, 3, 3, 32, 32)
    out = teacher(x)
    full = teacher.model.forward_features(x)
    assert out.shape == (1, 3, 4, 96)
    torch.testing.assert_close(out[0, 2, 1], full[0, 1 + 2 * 4 + 1])   # frame 2, patch 1 in (t, n) order


def test_grid_mismatch_is_a_clear_error():
    teacher = EncoderTeacher(create_model("endomamba_nano", img_size=32))
    with pytest.raises(ValueError, match="does not fit the student grid"):
        check_fits(teacher, create_model("endomamba_nano", img_size=64))
    with pytest.raises(ValueError, match="unknown teacher kind"):
        build_teacher("clip")
    with pytest.raises(ValueError, match="encoder.pth"):
        build_teacher("endomamba", None)


def test_videomae_teacher_from_local_hf_directory(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=24,
                                      num_hidden_layers=1, num_attention_heads=2, intermediate_size=48)
    torch.manual_seed(2)
    transformers.VideoMAEModel(cfg).save_pretrained(tmp_path / "videomae")
    student = create_model("endomamba_nano", img_size=32)
    teacher = build_teacher("videomae", tmp_path / "videomae", student=student)
    assert teacher.embed_dim == 24 and _frozen(teacher)
    x = torch.randn(2, 3, 4, 32, 32)
    out = teacher(x)
    assert out.shape == (2, 4, 4, 24)
    direct = teacher.model(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state.view(2, 2, 4, 24)
    torch.testing.assert_close(out[:, 0], direct[:, 0])
    torch.testing.assert_close(out[:, 1], direct[:, 0])               # tubelet 2: repeated over its 2 frames
    torch.testing.assert_close(out[:, 3], direct[:, 1])
    with pytest.raises(ValueError, match="4 frames"):
        teacher(torch.randn(1, 3, 6, 32, 32))
    with pytest.raises(ValueError, match="does not fit"):
        build_teacher("videomae", tmp_path / "videomae", student=create_model("endomamba_nano", img_size=64))
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_teacher("videomae", tmp_path / "missing")
    # a processor with its own statistics: the ImageNet-normalised input is re-normalised to them
    (tmp_path / "videomae" / "preprocessor_config.json").write_text('{"image_mean": [0.5, 0.5, 0.5], '
                                                                     '"image_std": [0.5, 0.5, 0.5]}')
    t2 = build_teacher("videomae", tmp_path / "videomae")
    pix = x * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
    expect = t2.model(pixel_values=((pix - 0.5) / 0.5).permute(0, 2, 1, 3, 4)).last_hidden_state.view(2, 2, 4, 24)
    torch.testing.assert_close(t2(x)[:, 2], expect[:, 1], atol=1e-5, rtol=1e-5)
