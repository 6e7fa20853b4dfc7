"""Training loop: lr schedule, exact resume after a kill, and a 2-process DistributedDataParallel run (gloo)."""
import csv
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from endolib.pretrain.batches import StepBatchSampler
from endolib.pretrain.config import PretrainConfig
from endolib.pretrain.loop import SimulatedKill, lr_factor, train


def _cfg(out, **kw):
    base = dict(model="endomamba_nano", model_kwargs={"img_size": 32}, decoder="tiny",
                data={"domain": "noise", "length": 12, "num_frames": 3, "img_size": 32},
                batch_size=4, base_lr=0.05, total_steps=6, warmup_steps=2, ckpt_every=2, out_dir=str(out),
                progress=False, seed=7)
    base.update(kw)
    return PretrainConfig(**base)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_lr_schedule_warmup_then_cosine():
    f = [lr_factor(s, 4, 20, 0.01) for s in range(20)]
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(f[4:], f[5:])) and f[-1] > 0.01
    assert lr_factor(20, 4, 20, 0.01) == pytest.approx(0.01)
    assert _cfg("x", batch_size=512, base_lr=1.5e-4).lr() == pytest.approx(3e-4)


def test_batches_are_a_function_of_the_step():
    full = StepBatchSampler(10, 4, 3, 0, 6)
    resumed = StepBatchSampler(10, 4, 3, 4, 6)
    assert list(full)[4:] == list(resumed)
    ranks = [StepBatchSampler(10, 4, 3, 0, 6, rank=r, world_size=2).indices(5) for r in (0, 1)]
    assert ranks[0] + ranks[1] == full.indices(5)
    epoch0 = sorted(i for s in range(2) for _, i in full.indices(s))[:8]
    assert len(set(epoch0)) == 8                      # no repeats inside an epoch


def test_resume_after_kill_is_bitwise_exact(tmp_path):
    rows = train(_cfg(tmp_path / "a"))
    assert len(rows) == 6 and rows[-1]["loss"] < rows[0]["loss"]
    with pytest.raises(SimulatedKill):
        train(_cfg(tmp_path / "b"), stop_after=3)     # the checkpoint on disk is the one of step 2
    assert torch.load(tmp_path / "b" / "checkpoint.pth", weights_only=False)["step"] == 2
    train(_cfg(tmp_path / "b"), resume=True)
    a = torch.load(tmp_path / "a" / "checkpoint.pth", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pth", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg_sq"], b["optimizer"]["state"][k]["exp_avg_sq"])
    ra, rb = _rows(tmp_path / "a" / "metrics.csv"), _rows(tmp_path / "b" / "metrics.csv")
    assert [r["step"] for r in rb] == [str(s) for s in range(1, 7)] and ra == rb
    assert (tmp_path / "a" / "encoder.pth").is_file()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    run = train(_cfg(out, total_steps=3, ckpt_every=3), return_run=True)
    torch.save(run.model.state_dict(), f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_process_ddp_matches_single_process(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "ddp" / "rank0.pt")
    r1 = torch.load(tmp_path / "ddp" / "rank1.pt")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k           # DDP keeps the ranks identical
    single = train(_cfg(tmp_path / "one", total_steps=3, ckpt_every=3), return_run=True)
    sd = single.model.state_dict()
    for k in r0:
        torch.testing.assert_close(r0[k], sd[k], atol=2e-5, rtol=1e-4)
    ld, ls = _rows(tmp_path / "ddp" / "metrics.csv"), _rows(tmp_path / "one" / "metrics.csv")
    for a, b in zip(ld, ls):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)


def test_cli_runs_a_config_with_overrides(tmp_path):
    from endolib.pretrain.__main__ import main
    cfg = _cfg(tmp_path / "cli", total_steps=2)
    (tmp_path / "c.yaml").write_text(__import__("yaml").safe_dump(cfg.to_dict()))
    assert main(["--config", str(tmp_path / "c.yaml"), "--set", "total_steps=3", "mask_kind=random"]) == 0
    rows = _rows(tmp_path / "cli" / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"] and float(rows[0]["loss_rec"]) > 0
    with pytest.raises(ValueError, match="unknown pretraining config keys"):
        main(["--config", str(tmp_path / "c.yaml"), "--set", "masking=tube"])


def test_teacher_term_is_logged_and_teacher_stays_frozen(tmp_path):
    from endolib.models import create_model
    from endolib.pretrain.teachers import EncoderTeacher
    torch.manual_seed(11)
    teacher = EncoderTeacher(create_model("endomamba_nano", img_size=32))
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    run = train(_cfg(tmp_path / "t", total_steps=3), teacher=teacher, return_run=True)
    rows = _rows(tmp_path / "t" / "metrics.csv")
    for r in rows:
        assert float(r["loss"]) == pytest.approx(float(r["loss_rec"]) + 0.25 * float(r["loss_align"]), rel=1e-5)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert not any(k.startswith("teacher") for k in run.model.state_dict())   # never checkpointed
