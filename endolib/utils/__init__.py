"""Small shared helpers: seeding and RNG state, atomic file writes, checkpoint I/O."""
from endolib.utils.io import atomic_save, atomic_write_text, load_checkpoint_file
from endolib.utils.seed import get_rng_state, seed_everything, set_rng_state

__all__ = ["atomic_save", "atomic_write_text", "get_rng_state", "load_checkpoint_file", "seed_everything",
           "set_rng_state"]
