"""Small shared helpers: seeding, atomic file writes, checkpoint I/O."""
from endolib.utils.io import atomic_save, atomic_write_text, load_checkpoint_file
from endolib.utils.seed import seed_everything

__all__ = ["atomic_save", "atomic_write_text", "load_checkpoint_file", "seed_everything"]
