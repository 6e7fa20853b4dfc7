"""Figures and the closing text of the speed notebook, from the tidy CSV rows of the harness."""
import logging
from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd

from endolib.paths import OUTPUTS
from endolib.profiling.suite import speedups

log = logging.getLogger(__name__)
PAPER_FPS = 47.0
LONG_LEGEND = 8  # curves past which a legend goes under the axes, not over the curves
CURVE_MODES = ("stream_eager", "stream_fast", "stream_fast_graph", "stream_fast_compiled", "recompute", "framewise",
               "framewise_graph")


def load_benchmarks(root: Optional[Path] = None) -> dict:
    """The newest committed GPU CSVs under outputs/benchmarks/ (any subfolder): {'speed', 'floor', 'scan',
    'kernels', 'phases'} -> DataFrame; empty dict when none are there."""
    root = Path(root) if root is not None else OUTPUTS / "benchmarks"
    found = {}
    for key, name in (("speed", "speed_gpu.csv"), ("floor", "floor_gpu.csv"), ("scan", "scan_check_gpu.csv"),
                      ("kernels", "kernels_gpu.csv"), ("phases", "scan_phases_gpu.csv")):
        files = sorted(root.rglob(name), key=lambda p: p.stat().st_mtime) if root.exists() else []
        if files:
            found[key] = pd.read_csv(files[-1])
            found[key + "_path"] = files[-1]
    return found


def _short_device(names: pd.Series) -> pd.Series:
    """'NVIDIA H100 80GB HBM3' -> 'H100'."""
    return names.str.replace("NVIDIA ", "").str.split().str[0]


def _curves(df: pd.DataFrame) -> pd.DataFrame:
    # fast-path variants carry suffixes (stream_fast_compiled_fused_tiles2x64): all of them are curves
    ok = df[(df["mode"].isin(CURVE_MODES) | df["mode"].str.startswith("stream_fast")) & (df["status"] == "ok")].copy()
    ok["backend"] = ok["backend"].fillna("n/a")
    ok["label"] = ok["model"] + " " + ok["mode"] + ok["backend"].map(lambda b: "" if b == "n/a" else f" [{b}]")
    if "device_name" in ok and ok["device_name"].nunique() > 1:  # runs from several GPUs: say which is which
        ok["label"] = _short_device(ok["device_name"]) + ": " + ok["label"]
    return ok


def plot_vs_frames(df: pd.DataFrame, column: str = "fps", ax=None, title: str = "", floor_fps: Optional[float] = None):
    """One line per model / mode / backend: `column` (fps or peak_mem_mb) against frames seen, log-log."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    curves = _curves(df)
    groups = list(curves.groupby("label"))
    colors = plt.get_cmap("tab20" if len(groups) > 10 else "tab10").colors  # no colour twice
    for (label, g), color in zip(groups, colors * 2):
        g = g.sort_values("frames_seen")
        ax.plot(g["frames_seen"], g[column], marker="o", label=label, color=color)
    if column == "fps":
        ax.axhline(PAPER_FPS, color="gray", ls=":", label=f"paper ({PAPER_FPS:.0f} FPS)")
        if floor_fps:
            ax.axhline(floor_fps, color="black", ls="--", label=f"floor ({floor_fps:.0f} FPS)")
    ax.set(xscale="log", yscale="log", xlabel="frames seen", title=title,
           ylabel="frames per second (batch 1)" if column == "fps" else "peak memory (MiB)")
    frames = sorted(curves["frames_seen"].unique())
    ax.set_xticks(frames, [str(int(f)) for f in frames])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    if len(groups) > LONG_LEGEND:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    else:
        ax.legend(fontsize=7, loc="best")
    return ax


def plot_by_device(speed: pd.DataFrame, floor_df: Optional[pd.DataFrame] = None):
    """One row of panels per GPU (FPS and peak memory vs frames seen, that GPU's floor line): runs from several
    devices on one axis would repeat colours and mix machines."""
    devices = list(speed["device_name"].unique())
    fig, axes = plt.subplots(len(devices), 2, figsize=(16, 6.5 * len(devices)), squeeze=False)
    for dev, (left, right) in zip(devices, axes):
        d = speed[speed["device_name"] == dev]
        f = floor_df[floor_df["device_name"] == dev] if floor_df is not None and "device_name" in floor_df else None
        name = _short_device(pd.Series([dev]))[0]
        plot_vs_frames(d, "fps", left, title=f"{name}: FPS vs frames seen", floor_fps=floor_fps(f))
        plot_vs_frames(d, "peak_mem_mb", right, title=f"{name}: peak memory vs frames seen")
        if len(right.get_legend().get_texts()) > LONG_LEGEND:  # one legend under both panels (same curves, colours)
            right.get_legend().remove()
            left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2)
    fig.tight_layout()
    return fig


def plot_breakdown(df: pd.DataFrame, ax=None, title: str = ""):
    """Bar chart: milliseconds per streamed frame in spatial blocks, temporal blocks, embedding + head."""
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    b = df[df["mode"] == "breakdown"].groupby("layer_type")["latency_ms_median"].mean()
    ax.bar(b.index, b.values, color=["tab:blue", "tab:orange", "tab:green"][: len(b)])
    ax.set(ylabel="ms per frame", title=title)
    ax.tick_params(axis="x", labelrotation=20)
    return ax


FAMILY_COLORS = {"scan": "tab:red", "matmul": "tab:blue", "conv": "tab:purple", "triton fused": "tab:green",
                 "other": "tab:gray"}


def plot_kernel_families(kernels: pd.DataFrame, ax=None, title: str = ""):
    """Stacked bars: GPU µs of one fast streamed frame per kernel family, one bar per device / variant (rows of
    kernels_gpu.csv), in the order measured; the bar's total is the GPU busy time of the step."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    k = kernels.copy()
    k["variant"] = _short_device(k["device_name"]) + ": " + k["mode"]
    wide = k.pivot_table(index="variant", columns="family", values="us", aggfunc="sum", sort=False).fillna(0.0)
    _stacked_barh(ax, wide[[f for f in FAMILY_COLORS if f in wide] + [f for f in wide if f not in FAMILY_COLORS]],
                  FAMILY_COLORS)
    ax.set(xlabel="GPU µs per streamed frame (kernel time, profiler)", title=title)
    return ax


def _stacked_barh(ax, wide: pd.DataFrame, colors: dict):
    """One horizontal bar per row of `wide` (top to bottom in its order), its columns stacked left to right."""
    left = pd.Series(0.0, index=wide.index)
    for col in wide.columns:
        ax.barh(wide.index, wide[col], left=left, label=col, color=colors.get(col))
        left += wide[col]
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")


def scan_phase_costs(phases: pd.DataFrame) -> pd.DataFrame:
    """Rows of scan_phases_gpu.csv -> the µs of each phase of one scan call, per device / tiles / shape: the rows
    whose PH switches the phases on one after another (0, 1, 3, 7, ...) differ by one phase each. Tiles measured
    without that whole chain are left out."""
    from endolib.profiling.scan_phases import flags_of, phase_bits
    out = []
    auto = phases[phases["prologue_rows"].astype(str) == "auto"]
    for (dev, tiles, case), g in auto.groupby(["device_name", "tiles", "case"], sort=False):
        bits, names = phase_bits(tiles), flags_of(tiles)
        us = g.groupby("ph")["us_median"].median()
        chain = [sum(bits[:k]) for k in range(len(bits) + 1)]
        if not set(chain) <= set(us.index):
            continue
        costs = [("launch", us[0])] + [(names[b], us[hi] - us[lo]) for b, lo, hi in zip(bits, chain, chain[1:])]
        out += [dict(device_name=dev, tiles=tiles, case=case, phase=name, us=v) for name, v in costs]
    return pd.DataFrame(out, columns=["device_name", "tiles", "case", "phase", "us"])


def plot_scan_phases(phases: pd.DataFrame, ax=None, title: str = ""):
    """Stacked bars: one scan call split into its phases (`scan_phase_costs`), one bar per device / tiles /
    shape; a bar's length is the whole call."""
    costs = scan_phase_costs(phases)
    costs["bar"] = (_short_device(costs["device_name"]) + ": " + costs["tiles"] + " " + costs["case"])
    wide = costs.pivot_table(index="bar", columns="phase", values="us", aggfunc="sum", sort=False).fillna(0.0)
    ax = ax or plt.subplots(figsize=(10, 0.4 * len(wide) + 1.5))[1]
    _stacked_barh(ax, wide, dict(zip(wide.columns, plt.get_cmap("tab10").colors * 2)))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars: long ones reach the edge
    ax.set(xlabel="µs per scan call in a CUDA graph (phases switched off one by one)", title=title)
    return ax


def floor_fps(floor_df: Optional[pd.DataFrame]) -> Optional[float]:
    """Frames per second at the floor (the largest term of the best-measured fast variant)."""
    if floor_df is None or floor_df.empty or "floor_ms" not in floor_df or floor_df["floor_ms"].isna().all():
        return None
    best = floor_df.sort_values("measured_ms").iloc[0]
    return 1e3 / best["floor_ms"]


def summary_text(df: pd.DataFrame, floor_df: Optional[pd.DataFrame] = None, at_frames: int = 1024,
                 where: str = "", paper: bool = False) -> str:
    """Markdown: EndoMamba's best streaming FPS and its speed-up over every other model / mode measured
    (ratio of FPS at the same frames seen), the paper ratio when `paper`, and the floor when given."""
    s = speedups(df, at_frames)
    stream = s[(s["model"] == "endomamba") & s["mode"].str.startswith("stream")]
    if stream.empty:
        return f"{where} no EndoMamba streaming measurement."
    best = stream.iloc[0]
    head = (f"**{where}** EndoMamba streaming ({best['mode']} [{best['backend']}]) runs at **{best['fps']:.0f} FPS** "
            f"at ~{int(best['frames_seen'])} frames seen")
    head += f", {best['fps'] / PAPER_FPS:.1f}x the paper's {PAPER_FPS:.0f} FPS." if paper else "."
    lines = [head]
    for _, r in s.drop(index=best.name).iterrows():
        ratio = best["fps"] / r["fps"]
        word = f"{ratio:.1f}x faster than" if ratio >= 1 else f"{1 / ratio:.1f}x slower than"
        lines.append(f"- {word} {r['model']} {r['mode']} [{r['backend']}] ({r['fps']:.1f} FPS)")
    if floor_df is not None and "floor_ms" in floor_df and not floor_df["floor_ms"].isna().all():
        f = floor_df.sort_values("measured_ms").iloc[0]
        lines.append(f"- floor for one frame: {f['floor_ms']:.3f} ms ({1e3 / f['floor_ms']:.0f} FPS), dominated by "
                     f"*{f['dominant']}*; {f['mode']} [{f['backend']}] takes {f['measured_ms']:.3f} ms = "
                     f"{f['measured_over_floor']:.1f}x the floor ({int(f['launches'])} kernel launches).")
    return "\n".join(lines)


def gpu_summaries(bench: dict, at_frames: int = 1024) -> list:
    """summary_text for each GPU in the committed CSVs: speed-ups only between runs on the same device."""
    speed, flo = bench["speed"], bench.get("floor")
    out = []
    for dev, d in speed.groupby("device_name", sort=False):
        f = flo[flo["device_name"] == dev] if flo is not None and "device_name" in flo else flo
        out.append(summary_text(d, f, at_frames, where=f"GPU ({dev}), endomamba_small at 224²:", paper=True))
    return out
