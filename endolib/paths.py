"""Where the workbook reads and writes: repository-relative defaults, overridable by environment."""
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Synthetic datasets are generated here unless ENDOLIB_DATA points at a real data root.
DATA_ROOT = Path(os.environ.get("ENDOLIB_DATA", REPO_ROOT / "data"))
OUTPUTS = Path(os.environ.get("ENDOLIB_OUTPUTS", REPO_ROOT / "outputs"))
NOTEBOOKS = REPO_ROOT / "notebooks"
MANIFESTS = REPO_ROOT / "data_manifests"
