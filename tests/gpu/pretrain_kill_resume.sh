#!/usr/bin/env bash
# GPU check of issue 4 (run on the device machine from the repository root): the pretraining CLI under
# torchrun, SIGKILLed once step 21 is logged (checkpoint of step 20 on disk), then --resume to step 30.
# usage: bash tests/gpu/pretrain_kill_resume.sh OUTDIR [key=value config overrides ...]; writes OUTDIR/pretrain_cli_metrics.csv
set -u
O=$1; shift
R=/tmp/ptrun; rm -rf $R
ARGS=(--config endolib/pretrain/configs/tiny.yaml --set out_dir=$R ckpt_every=10 log_every=1 total_steps=30 "$@")
torchrun --nproc_per_node 1 -m endolib.pretrain "${ARGS[@]}" > $O/pretrain_phase1.log 2>&1 &
PID=$!
until [ "$(cat $R/metrics.csv 2>/dev/null | wc -l)" -ge 22 ] || ! kill -0 $PID 2>/dev/null; do sleep 0.2; done
pkill -9 -f "m endolib.pretrain"; wait $PID 2>/dev/null; echo "SIGKILL at logged step $(tail -1 $R/metrics.csv | cut -d, -f1)"
torchrun --nproc_per_node 1 -m endolib.pretrain "${ARGS[@]}" --resume > $O/pretrain_phase2.log 2>&1; echo "resume rc $?"
cp $R/metrics.csv $O/pretrain_cli_metrics.csv; grep -h "resumed\|last step\|pretraining:" $O/pretrain_phase*.log
