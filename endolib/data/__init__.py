"""Data: video I/O, clip sampling, indexing, synthetic endoscopy world, loaders for the real datasets' layouts.

Submodules are imported on demand (``endolib.data.io`` needs PyAV; the GPU path must not)."""
