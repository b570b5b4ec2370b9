#!/usr/bin/env bash
# The GPU check of issue 15 item 6, in one call on a lent device machine (see docs/benchmarks.md):
#   1. inference frames/s at 256² and 512², batch (chunk) 1/16/64, fp32 and bf16
#      (`pmfs bench infer --device cuda`);
#   2. a 256² training step of the whole system at batch 8 in bf16-mixed: time, peak memory
#      (`pmfs bench train --device cuda`);
#   3. a 200-batch `pmfs fit` of experiments/demo.yaml at 256² on the GPU in bf16-mixed, on a
#      small synthetic set, with its losses written to CSV: finite and falling. Every batch is
#      at 256² (`curriculum.renderer_size=null`: demo.yaml's first 200 batches are at 128²).
# Every result lands in $OUT (the device tool's folder; ./gpu_results elsewhere). Packages the
# device image lacks travel as wheels in .whl/ (scripts/gpu_wheels.sh downloads them here; carry
# `.whl`). Usage on the device tool:  bash scripts/gpu_check.sh   (≈ 6 min on an H100)
# PMFS_CHECK_DEVICE=cpu PMFS_CHECK_QUICK=1 runs the same steps tiny on a CPU (tests/test_gpu_check.py).
set -uo pipefail
OUT=${OUT:-gpu_results}
DEVICE=${PMFS_CHECK_DEVICE:-cuda}
QUICK=${PMFS_CHECK_QUICK:-0}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 WANDB_MODE=offline
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-} || exit 1
fi
export PYTHONPATH=.:${PYTHONPATH:-}
PMFS=("$PY" -m pmfs)
if [ "$QUICK" = 1 ]; then
  SIZES=(32 64); CHUNKS=(1 4); FRAMES=4; TRAIN_SIZE=64; BATCHES=6; SPEAKERS=3; CLIPS=1
  TREND=(--finite-only)  # 6 batches: finite, not necessarily falling yet
  INFER_TIMING=(--warmup 1 --repeats 1); TRAIN_TIMING=(--warmup 1 --repeats 1)
  TRAIN_BATCH=2; FIT_ARGS=(--data.init_args.batch_size=4)  # bf16 on a CPU without it is slow
else
  SIZES=(256 512); CHUNKS=(1 16 64); FRAMES=64; TRAIN_SIZE=256; BATCHES=200; SPEAKERS=6; CLIPS=3
  TREND=()
  INFER_TIMING=(--warmup 1 --repeats 3); TRAIN_TIMING=(--warmup 2 --repeats 5)
  TRAIN_BATCH=8; FIT_ARGS=()
fi
status=0
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} | tee "$OUT/machine.txt"

# 1. inference: fp32 and bf16, chunk 1/16/64
for precision in 32 bf16-mixed; do
  for chunk in "${CHUNKS[@]}"; do
    "${PMFS[@]}" bench infer --device "$DEVICE" --precision "$precision" --sizes "${SIZES[@]}" \
      --frames "$FRAMES" --chunk "$chunk" "${INFER_TIMING[@]}" \
      --json "$OUT/infer_${precision}_chunk${chunk}.json" 2>&1 | tee -a "$OUT/infer.log" \
      || status=1
  done
done

# 2. one training step of the whole system at 256², batch 8, bf16-mixed
"${PMFS[@]}" bench train --device "$DEVICE" --precision bf16-mixed --stages pmfs \
  --image-size "$TRAIN_SIZE" --batch-size "$TRAIN_BATCH" "${TRAIN_TIMING[@]}" \
  --json "$OUT/train_bf16.json" 2>&1 | tee "$OUT/train.log" || status=1

# 3. a short fit of demo.yaml at 256² on the GPU, losses to CSV
DATA=$(mktemp -d)/synth
"${PMFS[@]}" data synth --out "$DATA" --size "$TRAIN_SIZE" --speakers "$SPEAKERS" \
  --clips "$CLIPS" >"$OUT/synth.log" 2>&1 || status=1
ACCEL=gpu; [ "$DEVICE" = cpu ] && ACCEL=cpu
# an overlay: `--model.init_args.curriculum.renderer_size=null` does not reach a nested init_args
FULL_SIZE=$(dirname "$DATA")/full_size.yaml
printf 'model:\n  init_args:\n    curriculum:\n      renderer_size: null\n' >"$FULL_SIZE"
"${PMFS[@]}" fit -c experiments/demo.yaml -c "$FULL_SIZE" \
  --data.init_args.root="$DATA" --data.init_args.image_size="$TRAIN_SIZE" \
  --data.init_args.num_workers=4 --trainer.accelerator="$ACCEL" --trainer.devices=1 \
  ${FIT_ARGS[@]+"${FIT_ARGS[@]}"} \
  --trainer.precision=bf16-mixed --trainer.max_steps=$((BATCHES * 4)) \
  --trainer.max_epochs=1000 --trainer.limit_val_batches=0 --trainer.log_every_n_steps=1 \
  --trainer.callbacks='[]' --trainer.enable_checkpointing=false \
  --trainer.logger=lightning.pytorch.loggers.CSVLogger \
  --trainer.logger.save_dir="$OUT/fit" --trainer.logger.name=demo256 \
  >"$OUT/fit.log" 2>&1 || status=1
$PY scripts/loss_trend.py "$OUT"/fit/demo256/version_0/metrics.csv train/loss ${TREND[@]+"${TREND[@]}"} \
  | tee "$OUT/fit_trend.txt" || status=1
exit $status
