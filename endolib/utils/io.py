"""Atomic writes (a crash never leaves a half-written file) and checkpoint reading with clear errors."""
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_replace(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result gets an ordinary file's mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path) -> None:
    """torch.save to `path` through a temporary file and an atomic rename."""
    _atomic_replace(Path(path), lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path) -> None:
    _atomic_replace(Path(path), lambda f: f.write(text.encode()))


def load_checkpoint_file(path, map_location="cpu") -> Any:
    """torch.load with errors that say what is wrong with the file and what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}. Pass the path of a .pth/.pt file.")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): re-download or re-save it.")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # pickle/zip errors differ by torch version; name them all the same way
        raise ValueError(
            f"could not read checkpoint {path} ({type(e).__name__}: {e}). The file is truncated, "
            "corrupt, or not a PyTorch checkpoint: re-download it or point at another file."
        ) from e
