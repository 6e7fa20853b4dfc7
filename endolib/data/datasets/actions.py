"""SurgicalActions160 loader: 160 short clips in 16 class folders ``NN_action/NN_MM.mp4`` (ITEC release layout).

The release has no official split; we use a class-stratified ``num_folds``-fold split over each
class's clips in file-name order: fold ``fold`` is 'test' (and 'val'), the other folds are 'train'.
Items: ``{"video": (3, T, S, S), "label": int}`` (index in ``SURGICALACTIONS160_CLASSES``).
"""
from __future__ import annotations

from endolib.data.datasets.base import ClipDataset, check_label, resolve_root
from endolib.data.datasets.classes import SURGICALACTIONS160_CLASSES
from endolib.data.transforms import augment_clip, to_tensor_clip


class SurgicalActions160(ClipDataset):
    """One item per clip (see module docstring)."""

    name, classes = "surgicalactions160", SURGICALACTIONS160_CLASSES
    layout = ("SurgicalActions160/\n  01_abdominal_access/01_01.mp4 ... 01_10.mp4\n  02_injection/ ...\n  ...\n"
              "  16_endobag-out/16_10.mp4")

    def __init__(self, root, split, num_frames=8, img_size=64, sampling_rate=1, fold: int = 0, num_folds: int = 5,
                 mode: str | None = None, **kw):
        self.dir = resolve_root(root, "SurgicalActions160", self.classes[0], self.name, self.layout)
        self.fold, self.num_folds, self.mode = fold, num_folds, mode
        super().__init__(self.dir, split, num_frames, img_size, sampling_rate, **kw)
        self.items = [(v, 0) for v in range(len(self.videos_meta))]

    @property
    def labels(self) -> list[int]:
        """The label of every item, without decoding any video."""
        return [self.videos_meta[v]["label"] for v, _ in self.items]

    def _index(self):
        from endolib.data.io import VIDEO_EXTS
        out = []
        for folder in sorted(d for d in self.dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            label = check_label(folder.name, self.classes, self.name, f"class folder {folder}")
            clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS)
            for j, clip in enumerate(clips):
                held_out = j % self.num_folds == self.fold
                if held_out == (self.split != "train"):
                    out.append(dict(path=clip, label=label, num=1))
        return out

    def __getitem__(self, i):
        from endolib.data.io import read_video
        from endolib.data.sampling import clip_indices
        meta, rng = self.videos_meta[self.items[i][0]], self._rng(i)
        frames = read_video(meta["path"])
        mode = self.mode or ("random" if self.train else "uniform")
        clip = frames[clip_indices(len(frames), self.num_frames, self.sampling_rate, mode=mode, rng=rng)]
        if self.augment:
            clip, _, _ = augment_clip(clip, rng)
        return {"video": to_tensor_clip(clip, self.img_size), "label": meta["label"]}
