"""Result tables: the tidy per-task CSV schema, its writer, and `summary.md` beside the paper's figures.

Schema of `outputs/results/<task>.csv` (one row per metric and run; `RESULT_COLUMNS` in this order,
any extra columns a notebook adds, e.g. `mode` or `data`, are kept after them):

| column | meaning |
| --- | --- |
| task | task family: classification, segmentation, detection, phase, triplet, action, localization |
| dataset | dataset key as in `endolib.data` (polypdiag, cvc12k, kumc, cholec80, autolaparo, ...) |
| metric | metric name, lower case (f1, dice, iou, accuracy, jaccard, map_ivt, ...) |
| value | our model's value, a fraction in [0, 1] (as `endolib.metrics` returns it) |
| baseline_value | the trivial baseline's value for the same metric (majority class, empty mask, ...) |
| checkpoint | checkpoint the backbone started from ('scratch' for none) |
| seed | random seed of the run |
| split | evaluation split (test, val) |
| notes | free text: protocol options, 'synthetic' / 'real' data, anything a reader needs |

`build_summary` writes one markdown table of every result, with the figure the EndoMamba paper
reports for the same dataset and metric on the REAL data next to ours on (by default) SYNTHETIC data.
Paper figures live in `PAPER_RESULTS` below, each with its source; a figure we could not verify is
`None` and printed as 'not found' (never guessed).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from endolib.paths import OUTPUTS
from endolib.utils import atomic_write_text

__all__ = ["RESULT_COLUMNS", "PAPER_RESULTS", "write_result_rows", "read_results", "build_summary"]

log = logging.getLogger(__name__)

RESULT_COLUMNS = ("task", "dataset", "metric", "value", "baseline_value", "checkpoint", "seed", "split", "notes")
_REQUIRED = ("task", "dataset", "metric", "value")
_ALIASES = {"baseline": "baseline_value"}
_KEY = ("task", "dataset", "metric", "checkpoint", "seed", "split", "mode")

PAPER = "EndoMamba (Tian et al., MICCAI 2025, arXiv:2502.19090)"
REPO = "authors' EndoMamba repository README, table 'Finetuned weights' (github.com/TianCuteQY/EndoMamba)"
# Percentages. paper: the paper's own table (None = we could not read it, printed 'not found');
# repo: the figure the authors' README gives for their released fine-tuned weights.
PAPER_RESULTS = (
    {"task": "classification", "dataset": "polypdiag", "metric": "f1", "paper": None, "repo": 96.0,
     "note": "a later paper's table (FPRL) cites 94.5 for EndoMamba; not checked against 2502.19090"},
    {"task": "segmentation", "dataset": "cvc12k", "metric": "dice", "paper": None, "repo": 85.4,
     "note": "FPRL's table cites 84.5; not checked against 2502.19090"},
    {"task": "detection", "dataset": "kumc", "metric": "f1", "paper": None, "repo": None,
     "note": "FPRL's table cites 88.8; Endo-FM's KUMC F1 is frame-level (see endolib.metrics.detection)"},
    {"task": "phase", "dataset": "autolaparo", "metric": "accuracy", "paper": None, "repo": 83.3,
     "note": "README 'Acc'; EndoMamba's evaluation.py reports video-level accuracy"},
    {"task": "phase", "dataset": "autolaparo", "metric": "jaccard", "paper": None, "repo": None, "note": ""},
    {"task": "phase", "dataset": "cholec80", "metric": "accuracy", "paper": None, "repo": None, "note": ""},
    {"task": "phase", "dataset": "cholec80", "metric": "jaccard", "paper": None, "repo": None, "note": ""},
    {"task": "localization", "dataset": "", "metric": "", "paper": None, "repo": None,
     "note": "the paper's fourth task; its table was not readable here"},
)


def _result_path(path) -> Path:
    """A '.csv' path as given; a bare task name -> OUTPUTS/results/<task>.csv."""
    p = Path(path)
    return p if p.suffix == ".csv" else OUTPUTS / "results" / f"{p.name}.csv"


def _apply_aliases(df: pd.DataFrame) -> pd.DataFrame:
    """Fold alias columns ('baseline') into their schema name, filling only where that one is empty."""
    for alias, name in _ALIASES.items():
        if alias in df:
            df[name] = df[name].fillna(df[alias]) if name in df else df[alias]
            df = df.drop(columns=alias)
    return df


def _normalise(rows) -> pd.DataFrame:
    df = _apply_aliases(pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows))
    if df.empty:
        raise ValueError("write_result_rows: got no rows; pass a list of dicts with "
                         f"at least {list(_REQUIRED)}.")
    missing = [c for c in _REQUIRED if c not in df]
    if missing:
        raise ValueError(f"write_result_rows: rows lack column(s) {missing}; every row needs "
                         f"{list(_REQUIRED)} (optional: {list(RESULT_COLUMNS[4:])}).")
    for c in RESULT_COLUMNS:
        if c not in df:
            df[c] = float("nan") if c == "baseline_value" else ""
    df["value"] = pd.to_numeric(df["value"], errors="raise")
    df["baseline_value"] = pd.to_numeric(df["baseline_value"], errors="coerce")
    df["metric"] = df["metric"].astype(str).str.lower()
    extra = [c for c in df.columns if c not in RESULT_COLUMNS]
    return df[list(RESULT_COLUMNS) + extra]


def _key_str(v) -> str:
    """Compare keys across a CSV round trip: NaN/None -> '', 3.0 -> '3'."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def write_result_rows(rows, path) -> Path:
    """Write result rows (dicts or a DataFrame) to `path` ('.csv', or a task name -> outputs/results/<task>.csv).

    Rows already in the file with the same task / dataset / metric / checkpoint / seed / split (/ mode)
    are replaced in place, others are kept, so re-running one configuration updates only its own rows and
    leaves the file's row order (and a clean git tree) as it was."""
    path = _result_path(path)
    new = _normalise(rows)
    if path.is_file():
        old = _apply_aliases(pd.read_csv(path))
        key = [c for c in _KEY if c in new and c in old]
        both = pd.concat([old, new], ignore_index=True)
        keys = pd.Series(["\x1f".join(r) for r in zip(*(both[c].map(_key_str) for c in key))])
        first = pd.Series(range(len(both))).groupby(keys).transform("min")  # where each key first appears
        last = ~keys.duplicated(keep="last")
        new = both[last].iloc[first[last].argsort(kind="stable")]
    atomic_write_text(new.to_csv(index=False), path)
    log.info("wrote %d result rows to %s", len(new), path)
    return path


def read_results(results_dir=None) -> pd.DataFrame:
    """All result tables of `results_dir` (default outputs/results) concatenated; other CSVs there
    (manifest tables, the pretraining ablation, speed tables) have another schema and are left out."""
    results_dir = Path(results_dir) if results_dir is not None else OUTPUTS / "results"
    frames = [_apply_aliases(pd.read_csv(p)) for p in sorted(results_dir.glob("*.csv"))]
    frames = [f for f in frames if not f.empty and {"task", "metric", "value"} <= set(f.columns)]
    if not frames:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    for c in RESULT_COLUMNS:
        if c not in df:
            df[c] = float("nan") if c in ("value", "baseline_value") else ""
    return df


def _pct(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{100.0 * float(v):.1f}"


def _paper_lookup() -> dict:
    return {(r["dataset"], r["metric"]): r for r in PAPER_RESULTS if r["metric"]}


def _fmt_paper(v) -> str:
    return "not found" if v is None else f"{v:.1f}"


def _is_real(row) -> bool:
    data = str(row.get("data", "")).lower()
    return data == "real" or "real data" in str(row.get("notes", "")).lower()


def _results_table(df: pd.DataFrame, label: str) -> list:
    lookup = _paper_lookup()
    lines = [f"| task | dataset | metric | {label} | trivial baseline | paper, real data | "
             "authors' README, real data | checkpoint | seed | notes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        ref = lookup.get((str(r["dataset"]).lower(), str(r["metric"]).lower()), {})
        paper = _fmt_paper(ref.get("paper")) if ref else ""
        repo = (_fmt_paper(ref.get("repo")) if ref.get("repo") is not None else "—") if ref else ""
        notes = " ".join(str(r.get(c, "")) for c in ("mode", "notes") if str(r.get(c, "")) not in ("", "nan"))
        lines.append(f"| {r['task']} | {r['dataset']} | {r['metric']} | {_pct(r['value'])} | "
                     f"{_pct(r['baseline_value'])} | {paper} | {repo} | {r.get('checkpoint', '')} | "
                     f"{r.get('seed', '')} | {notes} |")
    return lines


def _paper_table() -> list:
    lines = ["| task | dataset | metric | paper, real data (%) | authors' README, real data (%) | note |",
             "|---|---|---|---|---|---|"]
    for r in PAPER_RESULTS:
        repo = "—" if r["repo"] is None else f"{r['repo']:.1f}"
        lines.append(f"| {r['task']} | {r['dataset'] or '—'} | {r['metric'] or '—'} | {_fmt_paper(r['paper'])} | "
                     f"{repo} | {r['note']} |")
    return lines


def build_summary(results_dir=None, out=None) -> Path:
    """Write `summary.md` (default outputs/results/summary.md) from every result CSV in `results_dir`."""
    results_dir = Path(results_dir) if results_dir is not None else OUTPUTS / "results"
    out = Path(out) if out is not None else results_dir / "summary.md"
    df = read_results(results_dir)
    lines = ["# Results summary", "",
             "Values are percentages. **ours** columns: this workbook's models; unless a row says otherwise "
             "they are trained and scored on the embedded SYNTHETIC datasets, so they test the pipeline, "
             "not the method. **paper, real data**: figures reported for EndoMamba on the real datasets "
             f"({PAPER}); 'not found' = not verified, never guessed. **authors' README**: {REPO}.", ""]
    if df.empty:
        lines += [f"No result tables found in `{results_dir}` yet: run the task notebooks.", ""]
    else:
        df = df.sort_values(["task", "dataset", "metric"], kind="stable")
        real = df.apply(_is_real, axis=1)
        for subset, label in ((df[~real], "ours, synthetic data"), (df[real], "ours, real data")):
            if len(subset):
                lines += [f"## {label.capitalize()}", ""] + _results_table(subset, label) + [""]
    lines += ["## Figures reported for EndoMamba (real data)", ""] + _paper_table() + [""]
    atomic_write_text("\n".join(lines), out)
    log.info("wrote %s (%d result rows)", out, len(df))
    return out
