"""Profiling: harness rows and memory, FastStream == eager step, floor counts, baselines, scan checks, GPU module."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from endolib.models import create_model
from endolib.models.mamba import RMSNorm
from endolib.profiling import floor, harness, scan_check, suite
from endolib.profiling.baselines import build_baseline
from endolib.profiling.fast_stream import FastStream, compile_options, embed_at, fuse_norms
from endolib.profiling.fused_mixer import fold_dt_proj, fuse_mixers
from walk_host import compiler, host_kernel


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(0)
    return create_model("endomamba_nano", img_size=32, num_classes=3).eval()


def test_time_calls_counts_and_positive():
    calls = []
    ms = harness.time_calls(lambda: calls.append(torch.randn(64, 64) @ torch.randn(64, 64)), "cpu", iters=5, warmup=2)
    assert len(ms) == 5 and len(calls) == 7 and (ms > 0).all()


def test_cpu_peak_memory_sees_a_known_allocation():
    with harness.peak_memory("cpu") as mem:
        a = torch.randn(256, 1024)  # 1 MiB
        b = a * 2                   # +1 MiB alive together
        del a, b
    assert 2.0 <= mem["mb"] < 2.5
    with harness.peak_memory("cpu") as mem2:
        for _ in range(4):
            torch.randn(256, 1024)  # freed each time: the peak stays at one
    assert 1.0 <= mem2["mb"] < 1.5


def test_measure_stream_rows_at_checkpoints():
    seen = []
    pool = [torch.randn(1, 3, 1, 4, 4) + i for i in range(3)]
    rows = harness.measure_stream("toy", lambda: seen.clear(), lambda x: seen.append(x), pool, [4, 10], "cpu", window=3)
    assert [r["frames_seen"] for r in rows] == [4, 10]
    assert len(seen) == 10  # the stream was reset after warm-up, then fed exactly to the last checkpoint
    for r in rows:
        assert r["iters"] == 3 and r["fps"] == pytest.approx(1e3 / r["latency_ms_median"])
        assert r["latency_ms_p90"] >= r["latency_ms_median"] > 0


def test_recompute_stops_past_budget():
    rows = harness.measure_recompute("toy", lambda c: torch.sin(c).sum(), lambda f: torch.randn(1, 3, f, 8, 8),
                                     [2, 4, 8], "cpu", max_ms=0.0, iters=2)
    assert [r["status"] for r in rows] == ["ok", "skipped", "skipped"]


def test_embed_at_matches_model_embed(nano):
    """Patch embedding as one GEMM over unfolded patches + device-side frame offset == the model's Conv3d
    embedding, in float64 on fresh random weights (a wrong patch order would be O(1) off)."""
    import copy
    m = copy.deepcopy(nano).double()
    torch.nn.init.normal_(m.patch_embed.proj.weight)
    x = torch.randn(2, 3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(embed_at(m, x, torch.tensor(5)), m._embed(x, 5), rtol=1e-12, atol=1e-12)


def test_fused_norm_matches_rmsnorm():
    n = RMSNorm(24)
    n.weight.data = torch.randn(24)
    x = torch.randn(3, 7, 24)
    ref = n(x)
    fuse_norms(n)
    torch.testing.assert_close(n(x), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_fast_stream_equals_eager_step_and_resets(nano, k):
    x = torch.randn(1, 3, 6, 32, 32)
    fs = FastStream(nano, dtype=torch.float32, frames_per_step=k)
    st = nano.init_stream(1)
    outs = []
    with torch.no_grad():
        full = nano(x)
        for t in range(0, 6, k):
            ref, st = nano.step(x[:, :, t:t + k], st)
            outs.append(fs.step(x[:, :, t:t + k]).clone())
            torch.testing.assert_close(outs[-1], ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-4, atol=1e-4)
        fs.reset()  # a new video: the first frames give the first outputs again
        torch.testing.assert_close(fs.step(x[:, :, :k]), outs[0], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="built for frames"):
        fs.step(torch.randn(1, 3, k + 1, 32, 32))


@pytest.mark.parametrize("variant, frames, tol", [(dict(compile="aot_eager"), 2, 1e-5),  # traced by compile
                                                   (dict(fuse_mixers=True), 3, 1e-4),        # fused directions
                                                   (dict(fold_dt=True), 3, 1e-4),           # dt_proj folded
                                                   (dict(fuse_mixers=True, fold_dt=True), 3, 1e-4)])
def test_fast_stream_variant_equals_eager_step(nano, variant, frames, tol):
    fs = FastStream(nano, dtype=torch.float32, **variant)
    x = torch.randn(1, 3, frames, 32, 32)
    st = nano.init_stream(1)
    with torch.no_grad():
        for t in range(frames):
            ref, st = nano.step(x[:, :, t:t + 1], st)
            torch.testing.assert_close(fs.step(x[:, :, t:t + 1]), ref, rtol=tol, atol=tol)


def test_compile_options_turn_off_shape_padding():
    """Inductor without its timed GEMM padding (which made the GPU step 210 or 259 kernels by chance), modes as
    inductor options; other backends get what they were given."""
    import torch._inductor.config as inductor_config
    opts = compile_options(True)["options"]
    assert opts == {"shape_padding": False}
    tuned = compile_options(True, "max-autotune-no-cudagraphs")["options"]
    assert tuned["shape_padding"] is False and tuned["max_autotune"] is True
    assert all(hasattr(inductor_config, k) for k in tuned)  # names inductor knows (it rejects others)
    assert compile_options("aot_eager") == {"backend": "aot_eager"}


def test_fast_stream_bf16_within_tolerance(nano):
    fs = FastStream(nano, dtype=torch.bfloat16)
    diff = suite.check_fast_stream(nano, fs, "torch", frames=4)
    assert 0 < diff["check_rel"] < 3e-2  # bf16 differs from fp32, but only by rounding
    assert diff["history_rel"] > 10 * diff["check_rel"]  # a stale state would not pass unnoticed
    assert next(nano.parameters()).dtype == torch.float32  # the caller's model is untouched


def test_step_cost_counts_matmul_flops(nano):
    cost = floor.step_cost(nano, dtype=torch.bfloat16)
    L = nano.num_tokens
    lin = sum(2 * L * m.in_features * m.out_features for m in nano.modules() if isinstance(m, torch.nn.Linear))
    conv = sum(2 * L * m.out_channels * m.kernel_size[0] for m in nano.modules() if isinstance(m, torch.nn.Conv1d))
    patch = 2 * nano.num_patches * nano.embed_dim * 3 * nano.patch_size ** 2
    expected = lin + conv + patch
    assert expected <= cost["flops"] <= 1.15 * expected  # + the scan's small contractions
    # every parameter once, in bf16, and the one row of the temporal table this frame reads
    assert cost["weight_bytes"] == 2 * (sum(p.numel() for p in nano.parameters()) + nano.embed_dim)
    assert cost["dispatched_ops"] > 10 * nano.depth


def test_step_cost_of_a_folded_stream_counts_what_it_reads(nano):
    """Folding dt_proj into x_proj trades D x r + r x D weights and multiply-adds per branch for D x D: the
    cost of the variant's own model (what `gpu._floor_rows` writes down) shows both."""
    costs = {fold: floor.step_cost(FastStream(nano, dtype=torch.float32, fuse_mixers=True, fold_dt=fold).model,
                                   dtype=torch.float32) for fold in (False, True)}
    mixers = [m for m in nano.modules() if hasattr(m, "d_state")]
    per_branch = sum((1 + m.bidirectional) * (m.d_inner ** 2 - 2 * m.dt_rank * m.d_inner) for m in mixers)
    assert costs[True]["weight_bytes"] - costs[False]["weight_bytes"] == 4 * per_branch
    assert costs[True]["flops"] - costs[False]["flops"] == 2 * nano.num_tokens * per_branch


def test_floor_rows_pick_the_largest_term():
    cost = dict(min_bytes=3e9, flops=1e12, x=1)
    ceil = floor.Ceilings(copy_bytes_per_s=3e12, matmul_flops_per_s=1e15, launch_s_eager=5e-6, launch_s_graph=1e-6)
    rows = floor.floor_rows(cost, ceil, launches=100, measured_ms=2.0)
    terms = {r["term"]: r["ms"] for r in rows}
    assert terms == pytest.approx({"bytes / bandwidth": 1.0, "flops / matmul rate": 1.0, "launches x launch latency": 0.1})
    assert rows[0]["floor_ms"] == pytest.approx(1.0) and rows[0]["measured_over_floor"] == pytest.approx(2.0)


def test_baselines_shapes_and_framewise_independence():
    x = torch.randn(1, 3, 4, 32, 32)
    vit = build_baseline("vit_framewise", "nano", 32).eval()
    with torch.no_grad():
        out = vit(x)
        assert out.shape == (1, 4, 96)
        torch.testing.assert_close(out[:, 2:3], vit(x[:, :, 2:3]), rtol=1e-5, atol=1e-5)
        st = build_baseline("divided_st", "nano", 32).eval()
        y = st(x)
        assert y.shape == (1, 4, 96)
        x2 = x.clone()
        x2[:, :, 3] += 1.0  # divided attention is not causal: a later frame changes earlier outputs
        assert not torch.allclose(st(x2)[:, 0], y[:, 0])
        assert build_baseline("videomamba", "nano", 32).eval()(x).shape == (1, 96)
    with pytest.raises(ValueError, match="unknown baseline"):
        build_baseline("resnet", "nano", 32)


def test_scan_check_torch_backend_rows():
    row = scan_check.check_case("torch", "cpu", torch.float32, 2, 6, 37, 16, seed=3, grad=True)
    assert row["y_rel_err"] < 1e-5 and row["last_state_rel_err"] < 1e-5 and row["grad_rel_err_max"] < 1e-4
    rowb = scan_check.check_case("torch", "cpu", torch.bfloat16, 2, 6, 37, 16, seed=3, grad=False)
    assert 1e-5 < rowb["y_rel_err"] < 2e-2


def test_speedups_ratios():
    df = pd.DataFrame([dict(model="a", mode="stream", backend="x", frames_seen=8, fps=100.0, latency_ms_median=10.0,
                            peak_mem_mb=1.0, status="ok"),
                       dict(model="b", mode="recompute", backend=None, frames_seen=8, fps=25.0, latency_ms_median=40.0,
                            peak_mem_mb=2.0, status="ok")])
    s = suite.speedups(df, 8).set_index("model")
    assert s.loc["b", "slower_than_best_x"] == pytest.approx(4.0) and s.loc["b", "backend"] == "n/a"


def test_gpu_module_runs_on_cpu_quick(tmp_path):
    from endolib.profiling import gpu
    # no latency cap: on a loaded machine a capped recompute curve stops ('skipped'), and tests must not time
    gpu.main(["--out", str(tmp_path), "--device", "cpu", "--quick", "--model", "endomamba_nano", "--img-size", "32",
              "--max-ms", "1e9"])
    speed = pd.read_csv(tmp_path / "speed_gpu.csv")
    assert {"stream_eager", "stream_fast", "recompute", "framewise", "clip", "breakdown"} <= set(speed["mode"])
    assert (speed["status"] == "ok").all(), speed[speed["status"] != "ok"][["model", "mode", "status"]].to_string()
    assert {"device_name", "torch", "triton", "mamba_ssm", "dtype", "backend"} <= set(speed.columns)
    fast = speed[speed["mode"] == "stream_fast"]
    assert (fast["check_rel"] < 3e-2).all()
    scan = pd.read_csv(tmp_path / "scan_check_gpu.csv")
    assert (scan["y_rel_err"].dropna() < 2e-2).all() and len(scan) >= 4
    assert len(pd.read_csv(tmp_path / "floor_gpu.csv")) == 3


def test_plots_and_summary_from_rows(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from endolib.profiling import plots
    assert plots.load_benchmarks(tmp_path / "none") == {}
    rows = [dict(model="endomamba", mode="stream_fast_graph", backend="triton", frames_seen=f, fps=940.0,
                 latency_ms_median=1.06, peak_mem_mb=30.0, status="ok") for f in (8, 1024)]
    rows += [dict(model="videomamba", mode="recompute", backend="cuda", frames_seen=f, fps=4700.0 / f,
                  latency_ms_median=f / 4.7, peak_mem_mb=f * 1.0, status="ok") for f in (8, 1024)]
    rows += [dict(model="endomamba", mode="breakdown", layer_type=k, latency_ms_median=v, status="ok")
             for k, v in (("spatial", 2.0), ("temporal", 1.5), ("embed_norm_head", 0.2))]
    df = pd.DataFrame(rows)
    (tmp_path / "h100").mkdir()
    df.to_csv(tmp_path / "h100" / "speed_gpu.csv", index=False)
    flo = pd.DataFrame([dict(mode="stream_fast_graph", backend="triton", term="launches x launch latency", ms=0.5,
                             floor_ms=0.5, measured_ms=1.06, measured_over_floor=2.12, dominant="launches x launch latency",
                             launches=400)])
    flo.to_csv(tmp_path / "h100" / "floor_gpu.csv", index=False)
    bench = plots.load_benchmarks(tmp_path)
    assert set(bench) >= {"speed", "floor"} and len(bench["speed"]) == len(df)
    text = plots.summary_text(bench["speed"], bench["floor"], at_frames=1024, where="GPU:", paper=True)
    assert "940 FPS" in text and "20.0x the paper" in text
    assert "204.8x faster than videomamba recompute" in text  # 940 / (4700 / 1024)
    assert "2.1x the floor" in text and plots.floor_fps(flo) == pytest.approx(2000.0)
    ax = plots.plot_vs_frames(df, "fps", floor_fps=2000.0)
    assert len(ax.get_lines()) == 4  # two curves, the paper line, the floor line
    assert len(plots.plot_breakdown(df).patches) == 3


def test_fused_mixers_equal_eager(nano):
    """Token-major fused mixers (conv as shifts, directions batched, row-major GEMMs) == the eager model:
    whole clips, and a stream whose conv / SSM state crosses frames."""
    import copy
    fused = copy.deepcopy(nano)
    assert fuse_mixers(fused) == nano.depth
    for b in (1, 2):
        x = torch.randn(b, 3, 2, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(fused.forward_features(x), nano.forward_features(x), rtol=1e-4, atol=1e-4)
            s_ref, s_fused = nano.init_stream(b), fused.init_stream(b)
            for t in range(2):
                ref, s_ref = nano.step(x[:, :, t:t + 1], s_ref)
                out, s_fused = fused.step(x[:, :, t:t + 1], s_fused)
                torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
            for a, c in zip(s_ref.conv + s_ref.ssm, s_fused.conv + s_fused.ssm):
                torch.testing.assert_close(c, a, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="no stream state"):
        fused.layers[0].mixer(torch.randn(1, 5, nano.embed_dim), nano.layers[-1].mixer.init_state(1))


def test_fold_dt_proj_same_projection_in_float64(nano):
    """Folded projection == x_proj then dt_proj, per branch, on fresh random weights and inputs (float64)."""
    import copy
    ref = copy.deepcopy(nano).double()
    for m in ref.modules():
        if hasattr(m, "dt_proj"):
            for lin in [mod for name, mod in m.named_children() if "proj" in name]:
                torch.nn.init.normal_(lin.weight)
    folded = copy.deepcopy(ref)
    assert fold_dt_proj(folded) == nano.depth
    for a, b in zip(ref.modules(), folded.modules()):
        if hasattr(a, "dt_proj"):
            x = torch.randn(2, a.d_inner, 7, dtype=torch.float64)
            for suffix in ("", "_b") if a.bidirectional else ("",):
                for u, v in zip(a._project(x, suffix), b._project(x, suffix)):
                    assert u.shape == v.shape
                    torch.testing.assert_close(v, u, rtol=1e-12, atol=1e-12)


def test_gpu_summaries_compare_within_one_device():
    """Rows from two GPUs: each summary ranks only its own device's runs; curve labels name the device;
    suffixed fast-path modes (fused, tiles) are drawn as curves too."""
    import matplotlib
    matplotlib.use("Agg")
    from endolib.profiling import plots
    rows = [dict(model="endomamba", mode="stream_fast_graph", backend="triton", frames_seen=1024, fps=300.0,
                 device_name="NVIDIA H100 80GB HBM3", status="ok", latency_ms_median=3.3, peak_mem_mb=1.0),
            dict(model="videomamba", mode="recompute", backend="cuda", frames_seen=1024, fps=1.5,
                 device_name="NVIDIA H100 80GB HBM3", status="ok", latency_ms_median=660.0, peak_mem_mb=9.0),
            dict(model="endomamba", mode="stream_fast_compiled_fused_tiles2x64", backend="triton", frames_seen=1024,
                 fps=536.0, device_name="NVIDIA H200", status="ok", latency_ms_median=1.87, peak_mem_mb=1.0)]
    h100, h200 = plots.gpu_summaries({"speed": pd.DataFrame(rows)})
    assert "NVIDIA H100" in h100 and "300 FPS" in h100 and "200.0x faster than videomamba" in h100
    assert "NVIDIA H200" in h200 and "536 FPS" in h200 and "videomamba" not in h200 and "11.4x the paper" in h200
    labels = [t.get_text() for t in plots.plot_vs_frames(pd.DataFrame(rows)).get_legend().get_texts()]
    assert "H200: endomamba stream_fast_compiled_fused_tiles2x64 [triton]" in labels
    assert "H100: videomamba recompute [cuda]" in labels
    # one row of panels per device, each with its own runs and its own floor line
    floor_df = pd.DataFrame([dict(device_name="NVIDIA H100 80GB HBM3", measured_ms=3.3, floor_ms=1.0),
                             dict(device_name="NVIDIA H200", measured_ms=1.87, floor_ms=0.25)])
    fig = plots.plot_by_device(pd.DataFrame(rows), floor_df)
    (fps100, mem100), (fps200, _) = np.array(fig.axes).reshape(2, 2)
    legend = lambda ax: [t.get_text() for t in ax.get_legend().get_texts()]  # noqa: E731
    assert fps100.get_title() == "H100: FPS vs frames seen" and "floor (1000 FPS)" in legend(fps100)
    assert "videomamba recompute [cuda]" in " ".join(legend(fps100)) and "floor (4000 FPS)" in legend(fps200)
    assert not any("videomamba" in t for t in legend(fps200)) and "memory" in mem100.get_title()
    many = pd.DataFrame([{**rows[2], "mode": f"stream_fast_variant_with_a_long_name_{i}"} for i in range(12)])
    (fps, mem), = np.array(plots.plot_by_device(many, floor_df).axes).reshape(1, 2)
    assert mem.get_legend() is None and len(legend(fps)) == 14  # 12 curves, the paper and the floor lines


def test_gpu_module_fast_only_on_cpu_quick(tmp_path):
    """`--only fast` on a CPU: the fused variant (compile variants need CUDA) checked against the eager step."""
    from endolib.profiling import gpu
    gpu.main(["--out", str(tmp_path), "--device", "cpu", "--quick", "--model", "endomamba_nano", "--img-size", "32",
              "--only", "fast", "--budget-s", "1e9"])
    speed = pd.read_csv(tmp_path / "speed_gpu.csv")
    assert set(speed["mode"]) == {"stream_fast_fused_tm"} and (speed["status"] == "ok").all()
    assert (speed["check_rel"] < 3e-2).all() and speed["fps"].gt(0).all()
    assert len(pd.read_csv(tmp_path / "floor_gpu.csv")) == 3


def test_best_tiles_picks_fastest_correct_choice_per_shape():
    row = lambda t, b, us, rel=0.0: dict(tiles=t, case="c", batch=b, d=768, n=16, us_median=us, rel_vs_first=rel)  # noqa
    rows = [row("auto", 1, 1.0), row("2,64,4", 1, 9.0), row("1,128,2,tlast", 1, 5.0), row("4,32,1", 1, 2.0, rel=0.5),
            row("2,64,4", 2, 7.0), row("8,32,8", 2, 8.0), dict(tiles="1,256,8", batch=2, d=768, n=16, error="oom")]
    assert scan_check.best_tiles(rows) == {(1, 768, 16): "1,128,2,tlast", (2, 768, 16): "2,64,4"}


def test_kernel_families_and_breakdown():
    names = {"_fwd_kernel": "scan", "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64": "matmul",
             "nvjet_tst_64x8_64x16_4x1_v_bz_TNT": "matmul", "triton_mm_28": "matmul", "triton_bmm_40": "matmul",
             "triton_poi_fused_convolution_silu_3": "conv", "triton_red_fused__to_copy_add_mean_mul_rsqrt_1": "triton fused",
             "triton_poi_fused_bmm_transpose_7": "triton fused", "void at::native::elementwise_kernel<128, 2>": "other",
             "void at::native::conv_depthwise2d_forward_kernel": "conv"}
    scans = {"_fwd_seq_kernel": "scan", "_fwd_nloop_kernel": "scan", "void selective_scan_fwd_kernel<>": "scan",
             "walk_scan": "scan"}
    assert {n: floor._family(n) for n in {**names, **scans}} == {**names, **scans}
    table = [dict(name=n, family=f, count=2, us=float(i + 1)) for i, (n, f) in enumerate(names.items())]
    fams = {r["family"]: r for r in floor.kernel_breakdown(table)}
    assert fams["matmul"]["count"] == 8 and fams["matmul"]["us"] == 2 + 3 + 4 + 5
    assert sum(r["us"] for r in fams.values()) == sum(r["us"] for r in table)


def test_plot_kernel_families_stacks_each_variant():
    import matplotlib
    matplotlib.use("Agg")
    from endolib.profiling import plots
    rows = [dict(device_name="NVIDIA H200", mode=m, family=f, us=us) for m, fams in
            (("a", dict(scan=600.0, matmul=700.0)), ("b", dict(scan=500.0, matmul=300.0, other=40.0)))
            for f, us in fams.items()]
    ax = plots.plot_kernel_families(pd.DataFrame(rows))
    widths = {}
    for p in ax.patches:
        y = round(p.get_y() + p.get_height() / 2)
        widths[y] = widths.get(y, 0) + p.get_width()
    assert sorted(widths.values()) == [840.0, 1300.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["H200: a", "H200: b"]


def test_scan_phase_costs_are_differences_of_the_phase_chain():
    """A phase's cost is the difference of the rows that switch it on after the ones before; 'seq' rows take
    their first three flags as phases (the others change the walk); tiles without the whole chain and rows
    with a forced prologue tile are left out; each bar is as long as the whole call."""
    import matplotlib
    matplotlib.use("Agg")
    from endolib.profiling import plots
    walk = {0: 1.5, 1: 3.9, 3: 4.5, 7: 4.8, 15: 5.6, 31: 6.2, 16: 2.4}
    seq = {0: 1.6, 1: 4.4, 3: 7.9, 7: 12.4, 13: 9.1}
    rows = [dict(device_name="NVIDIA H200", tiles=t, case="temporal_b1_h0", ph=ph, us_median=us, prologue_rows="auto")
            for t, tab in (("6,16,12,walk", walk), ("8,4,4,seq2", seq), ("8,1,1,seq2", {0: 1.0, 1: 2.0, 7: 9.0}))
            for ph, us in tab.items()]
    rows.append(dict(device_name="NVIDIA H200", tiles="8,4,4,seq2", case="temporal_b1_h0", ph=1, us_median=50.0,
                     prologue_rows="32"))
    costs = plots.scan_phase_costs(pd.DataFrame(rows))
    got = {(r.tiles, r.phase): round(r.us, 6) for r in costs.itertuples()}
    assert got == {("6,16,12,walk", "launch"): 1.5, ("6,16,12,walk", "staging"): 2.4,
                   ("6,16,12,walk", "zero walks"): 0.6, ("6,16,12,walk", "state passing"): 0.3,
                   ("6,16,12,walk", "walk writing partials"): 0.8, ("6,16,12,walk", "output"): 0.6,
                   ("8,4,4,seq2", "launch"): 1.6, ("8,4,4,seq2", "prologue"): 2.8,
                   ("8,4,4,seq2", "zero walk + passing"): 3.5, ("8,4,4,seq2", "walk writing y"): 4.5}
    ax = plots.plot_scan_phases(pd.DataFrame(rows))
    widths = {}
    for p in ax.patches:
        y = round(p.get_y() + p.get_height() / 2)
        widths[y] = widths.get(y, 0) + p.get_width()
    assert sorted(round(w, 6) for w in widths.values()) == [6.2, 12.4]


_PHASES_SCRIPT = """
import json, torch
from endolib.ops import selective_scan
from endolib.profiling import scan_check, scan_phases
kw = {k: v.float() for k, v in scan_check.random_inputs(1, 8, 37, 16, seed=5).items() if v is not None}
run = lambda: selective_scan(**kw, delta_softplus=True, return_last_state=True, backend="triton")
y, last = run()
out = {}
for ph in (7, 3):
    with scan_phases._phases(ph, 0):
        yp, lp = run()
    out[ph] = [(yp - y).abs().max().item(), (lp - last).abs().max().item()]
print(json.dumps(out))
"""


def test_scan_phases_patch_the_seq_kernel():
    """scan_phases' patched kernel with every phase on (PH=7) computes what the real 'seq' kernel does, exactly
    (under the interpreter); without the walk writing y (PH=3) the last state is another: the flags switch real
    work. (PH=3 leaves y as torch.empty left it, NaN at times: only the state is a deterministic witness.)"""
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1", "ENDOLIB_TRITON_TILES": "4,4,2,seq2"}
    proc = subprocess.run([sys.executable, "-c", _PHASES_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["7"] == [0.0, 0.0], res
    assert res["3"][1] > 1e-3, res


@pytest.mark.skipif(not compiler() or importlib.util.find_spec("triton") is None,
                    reason="needs a C++ compiler (g++ / clang++) and triton")
def test_scan_phases_patch_the_walk_kernel(monkeypatch):
    """scan_phases' patched 'walk' kernel, compiled for this CPU (tests/walk_host.py), with every phase on (PH=31)
    computes exactly what the real kernel does; without the state passing (PH=27) the segments after the first
    start from h0 instead of the passed state: another last state (the flags switch real work); back outside, the
    real kernel again. A kernel text the patches no longer match fails loudly."""
    from endolib.ops import scan_triton, scan_walk
    from endolib.profiling import scan_phases
    monkeypatch.setattr(scan_walk, "_kernel", host_kernel)
    g = torch.Generator().manual_seed(int.from_bytes(os.urandom(2), "little"))
    b, d, l, n = 1, 12, 37, 16
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    u, dt, z, B, C = (r(b, d, l), r(b, d, l) * 0.5 - 1, r(b, d, l), r(b, n, l), r(b, n, l))
    A, D, bias, h0 = -torch.exp(r(1, d, n) * 0.5), r(1, d), r(1, d) * 0.3, r(b, d, n)

    def run():
        out, last = scan_triton._empty_out(u, False), torch.empty(b, d, n)
        args, strides, flags = scan_triton.kernel_args(u, dt, A, B, C, D, z, bias, h0, True, out, last)
        scan_walk.forward(args, strides, b, flags, scan_triton.parse_tiles("8,4,4,walk", n))
        return out, last

    y, last = run()
    with scan_phases._walk_phases(31):
        y31, last31 = run()
    with scan_phases._walk_phases(27):
        _, last27 = run()
    y_after, _ = run()
    assert torch.equal(y31, y) and torch.equal(last31, last) and torch.equal(y_after, y)
    assert (last27 - last).abs().max() > 1e-3
    with pytest.raises(ValueError, match="no longer match scan_walk.source"):
        scan_phases.patched_walk_source(scan_walk.source(8, 4, 4, 16, torch.float32, (10, 2, 3)).replace(
            "// 2c.", "// 2c, renamed"), 31)
