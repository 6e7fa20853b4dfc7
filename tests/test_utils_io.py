import os
import stat

import pytest
import torch

from endolib.utils.io import _atomic_replace, atomic_save, atomic_write_text, load_checkpoint_file


def test_atomic_write_gives_an_ordinary_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text("a,b\n1,2\n", tmp_path / "r.csv")
    finally:
        os.umask(old)
    assert (tmp_path / "r.csv").read_text() == "a,b\n1,2\n"
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o644  # not mkstemp's 0600


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "ck.pth"
    atomic_save({"w": torch.arange(3)}, path)

    def crash(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic_replace(path, crash)
    assert torch.equal(load_checkpoint_file(path)["w"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pth"]
