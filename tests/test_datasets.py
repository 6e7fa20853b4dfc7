"""Loaders read the official layouts: hand-written real-format fixtures, generated synthetic copies; clear errors."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from endolib.data.datasets import LOADERS, load_dataset
from endolib.data.datasets.base import DatasetLayoutError
from endolib.data.datasets.classes import CHOLECT50_TRIPLETS, triplet_components
from endolib.data.io import VideoReadError, write_video
from endolib.data.synthetic import generate

FIX = Path(__file__).parent / "fixtures"


def _frames(seed, n, h=48, w=64):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _fixture(name, tmp_path) -> Path:
    dst = tmp_path / name
    shutil.copytree(FIX / name, dst)
    return dst


def _save(path, arr):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


# ---------------------------------------------------------------- hand-written fixtures (real formats)

def test_polypdiag_fixture(tmp_path):
    root = _fixture("polypdiag", tmp_path)
    for i, name in enumerate(["clip_a", "clip_b", "clip_c"]):
        write_video(root / "videos" / f"{name}.mp4", _frames(i, 6), fps=5)
    ds = load_dataset("polypdiag", root, "train", num_frames=4, img_size=32)
    assert [ds[i]["label"] for i in range(len(ds))] == [1, 0] and ds.classes == ["normal", "abnormal"]
    assert ds[0]["video"].shape == (3, 4, 32, 32)
    assert [load_dataset("polypdiag", root, s)[0]["label"] for s in ("val", "test")] == [0, 0]


def test_cvc12k_fixture(tmp_path):
    root = _fixture("cvc12k", tmp_path)
    for i in range(1, 6):
        _save(root / "CVC-ClinicDB" / "Original" / f"{i}.tif", _frames(i, 1)[0])
        m = np.zeros((48, 64), np.uint8)
        m[10:20 + i, 5:30] = 255
        _save(root / "CVC-ClinicDB" / "Ground Truth" / f"{i}.tif", m)
    ds = load_dataset("cvc12k", root, "test", num_frames=2, img_size=(48, 64), num_train=1)
    item = ds[0]  # video 2 = frames 4, 5
    assert item["mask"].shape == (2, 48, 64) and set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert item["mask"][0].sum() == (24 - 10) * 25 and item["mask"][1].sum() == (25 - 10) * 25
    assert len(load_dataset("cvc12k", root, "train", num_frames=2, num_train=1)) == 2  # video 1: 3 frames, 2 windows


def test_kumc_fixture_boxes_scale_with_resize(tmp_path):
    root = _fixture("kumc", tmp_path)
    for i in (1, 2):
        _save(root / "train2019" / "Image" / "1" / f"{i}.jpg", _frames(i, 1)[0])
    ds = load_dataset("kumc", root, "train", num_frames=2, img_size=(24, 32), augment=False, train=False)
    item = ds[0]
    # VOC xmin=11, ymin=5, xmax=30, ymax=25 (1-based, inclusive) -> edges [10, 4, 30, 25], then x0.5
    assert torch.allclose(item["boxes"][0], torch.tensor([[5.0, 2.0, 15.0, 12.5]]))
    assert torch.allclose(item["boxes"][1], torch.tensor([[5.5, 2.0, 15.0, 12.5]]))
    assert item["box_labels"][0].tolist() == [0]


def test_cholec80_fixture_1fps_phases_and_tools(tmp_path):
    root = _fixture("cholec80", tmp_path)
    write_video(root / "videos" / "video01.mp4", _frames(0, 20), fps=5)  # 4 s at 5 fps
    ds = load_dataset("cholec80", root, "train", num_frames=4, img_size=32)
    (vid, frames, labels), = ds.videos()
    assert vid == "video01" and frames.shape == (3, 4, 32, 32)
    assert labels["phase"].tolist() == [0, 0, 1, 2]  # frames 0, 5, 10, 15
    assert labels["tools"][:, [0, 2, 4]].tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert ds[0]["phase"].dtype == torch.long and ds[0]["tools"].shape == (4, 7)


def test_autolaparo_m2cai16_ophnet_fixtures(tmp_path):
    a = _fixture("autolaparo", tmp_path)
    write_video(a / "videos" / "01.mp4", _frames(1, 20), fps=5)
    assert load_dataset("autolaparo", a, "train").videos()[0][2]["phase"].tolist() == [0, 0, 1, 2]
    m = _fixture("m2cai16", tmp_path)
    write_video(m / "train_dataset" / "workflow_video_01.mp4", _frames(2, 20), fps=5)
    assert load_dataset("m2cai16", m, "train").videos()[0][2]["phase"].tolist() == [0, 1, 1, 2]
    o = _fixture("ophnet", tmp_path)
    write_video(o / "videos" / "case_0001.mp4", _frames(3, 20), fps=5)
    ds = load_dataset("ophnet", o, "train")
    assert ds.videos()[0][2]["phase"].tolist() == [6, 6, 7, 7] and len(ds.classes) == 96


def test_cholect50_fixture_multi_hot(tmp_path):
    root = _fixture("cholect50", tmp_path)
    for t in range(3):
        _save(root / "videos" / "VID01" / f"{t:06d}.png", _frames(t, 1)[0])
    ds = load_dataset("cholect50", root, "train", num_frames=3, img_size=32, train=False)
    item = ds[0]
    assert item["triplet"].shape == (3, 100) and item["instrument"].shape == (3, 6)
    assert torch.nonzero(item["triplet"]).tolist() == [[0, 1], [1, 17], [1, 60]]
    assert item["instrument"].tolist()[1] == [1, 0, 1, 0, 0, 0] and item["verb"][1, [1, 2]].tolist() == [1, 1]
    assert item["target"][2].sum() == 0 and item["phase"].tolist() == [0, 1, 1]
    # the triplet -> component map agrees with the fixture's own instrument/verb/target columns
    assert triplet_components(17) == (0, 1, 0) and CHOLECT50_TRIPLETS[60] == "hook,dissect,gallbladder"


def test_surgicalactions160_folders(tmp_path):
    root = tmp_path / "SurgicalActions160"
    for c, cls in enumerate(["01_abdominal_access", "07_coagulation"]):
        for m in range(1, 6):
            write_video(root / cls / f"{cls[:2]}_{m:02d}.mp4", _frames(10 * c + m, 5), fps=5)
    tr, te = load_dataset("surgicalactions160", root, "train"), load_dataset("surgicalactions160", root, "test")
    assert len(tr) == 8 and len(te) == 2
    assert sorted(te[i]["label"] for i in range(2)) == [0, 6]


# ---------------------------------------------------------------- generated synthetic copies

SMALL = {
    "polypdiag": dict(num_videos=6, num_frames=8), "cvc12k": dict(num_videos=22, frames_per_video=(3, 4)),
    "kumc": dict(videos=(2, 1, 1), num_frames=(3, 4)), "cholec80": dict(videos=(1, 1, 1), seconds=(20, 24)),
    "autolaparo": dict(videos=(1, 1, 1), seconds=(20, 24)), "m2cai16": dict(videos=(1, 1), seconds=(20, 24)),
    "ophnet": dict(videos=(1, 1, 1), seconds=(20, 24)), "cholect50": dict(videos=(1, 1, 1), seconds=(20, 24)),
    "surgicalactions160": dict(clips_per_class=2, num_frames=6),
}
LABEL_KEYS = {"polypdiag": ["label"], "cvc12k": ["mask"], "kumc": ["boxes"], "cholec80": ["phase", "tools"],
              "autolaparo": ["phase"], "m2cai16": ["phase"], "ophnet": ["phase"],
              "cholect50": ["instrument", "verb", "target", "triplet"], "surgicalactions160": ["label"]}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    for name, size in SMALL.items():
        generate(name, root, seed=3, **size)
    return root


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_loader_reads_generated_data(synth_root, name):
    for split in ("train", "test"):
        ds = load_dataset(name, synth_root, split, num_frames=4, img_size=32, fold=0) if name == "surgicalactions160" \
            else load_dataset(name, synth_root, split, num_frames=4, img_size=32)
        item = ds[len(ds) - 1]
        assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.float32
        assert torch.isfinite(item["video"]).all() and item["video"].std() > 0.05
        for key in LABEL_KEYS[name]:
            assert key in item
        if "phase" in item:
            assert item["phase"].shape == (4,) and 0 <= item["phase"].min() and item["phase"].max() < len(ds.classes)
        if hasattr(ds, "videos"):
            vid, frames, labels = ds.videos()[0]
            assert frames.shape[1] == next(iter(labels.values())).shape[0]


def test_generated_kumc_boxes_match_masks_after_resize(synth_root):
    ds = load_dataset("kumc", synth_root, "train", num_frames=3, img_size=32, train=False)
    item = ds[0]
    assert all(b.shape[1] == 4 and ((b[:, 2:] > b[:, :2]).all()) for b in item["boxes"])
    assert all(((b >= 0) & (b <= 32)).all() for b in item["boxes"])


# ---------------------------------------------------------------- clear errors

def test_missing_folder_names_layout_and_generator(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"ensure\('cholec80'\)") as e:
        load_dataset("cholec80", tmp_path / "nowhere", "train")
    assert "phase_annotations" in str(e.value) and isinstance(e.value, FileNotFoundError)


def test_missing_annotation_file(tmp_path):
    root = _fixture("cholec80", tmp_path)
    write_video(root / "videos" / "video01.mp4", _frames(0, 20), fps=5)
    (root / "tool_annotations" / "video01-tool.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="video01-tool.txt"):
        load_dataset("cholec80", root, "train")


def test_label_outside_known_classes(tmp_path):
    root = _fixture("cholec80", tmp_path)
    write_video(root / "videos" / "video01.mp4", _frames(0, 20), fps=5)
    f = root / "phase_annotations" / "video01-phase.txt"
    f.write_text(f.read_text().replace("ClippingCutting", "Appendectomy"))
    with pytest.raises(ValueError, match="Appendectomy.*known classes"):
        load_dataset("cholec80", root, "train")
    p = _fixture("polypdiag", tmp_path)
    for name in ["clip_a", "clip_b", "clip_c"]:
        write_video(p / "videos" / f"{name}.mp4", _frames(1, 4), fps=5)
    (p / "splits" / "train.txt").write_text("clip_a.mp4 2\n")
    with pytest.raises(ValueError, match="label '2'"):
        load_dataset("polypdiag", p, "train")


def test_corrupt_video_raises_video_read_error(tmp_path):
    root = _fixture("cholec80", tmp_path)
    (root / "videos").mkdir()
    (root / "videos" / "video01.mp4").write_bytes(b"\x00\x01 not an mp4 " * 50)
    with pytest.raises(VideoReadError):
        load_dataset("cholec80", root, "train")


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", ".", "train")


@pytest.mark.parametrize("name", ["polypdiag", "cvc12k", "cholec80", "cholect50", "surgicalactions160"])
def test_default_collate_batches(synth_root, name):
    ds = load_dataset(name, synth_root, "train", num_frames=4, img_size=32)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True)))
    assert batch["video"].shape == (2, 3, 4, 32, 32)
    if name == "cholect50":
        assert batch["triplet"].shape == (2, 4, 100) and batch["phase"].dtype == torch.long


def test_training_items_are_random_but_reproducible(synth_root):
    ds = load_dataset("cholec80", synth_root, "train", num_frames=4, img_size=32)
    torch.manual_seed(0)
    a = [ds[0]["video"] for _ in range(3)]
    torch.manual_seed(0)
    b = [ds[0]["video"] for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[0], a[1])
    ev = load_dataset("cholec80", synth_root, "test", num_frames=4, img_size=32)
    assert torch.equal(ev[0]["video"], ev[0]["video"])  # evaluation windows are fixed


def test_kumc_flat_image_folder_reads_as_one_sequence(tmp_path):
    root = tmp_path / "KUMC"
    for i in (1, 2, 3):
        _save(root / "test2019" / "Image" / f"{i}.jpg", _frames(i, 1)[0])
        (root / "test2019" / "Annotation").mkdir(parents=True, exist_ok=True)
        shutil.copy(FIX / "kumc" / "train2019" / "Annotation" / "1" / "1.xml",
                    root / "test2019" / "Annotation" / f"{i}.xml")
    ds = load_dataset("kumc", tmp_path, "test", num_frames=3, img_size=(48, 64))
    assert len(ds) == 1 and [b.tolist() for b in ds[0]["boxes"]] == [[[10.0, 4.0, 30.0, 25.0]]] * 3


def test_every_loader_documents_its_layout():
    from endolib.data.datasets import layout
    from endolib.data.synthetic import folder_name
    for name in LOADERS:
        assert layout(name).startswith(folder_name(name) + "/")
