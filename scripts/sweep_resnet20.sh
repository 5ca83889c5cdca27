#!/usr/bin/env bash
# Fooling sweep on CIFAR-10 ResNet-20: {location, topk, center-mass} × {lrp_t, grad_cam, simple_grad_t}
# × two λ, plus active cat ↔ dog with lrp_t and grad_cam; every run in parallel with a wall-time
# budget, then `foolmap eval --json` of each on the test set (scored with all three interpreters,
# which gives the transfer matrix). Results: $OUT/<run>/{config.json,log.jsonl,final.safetensors,eval.json}.
#
#   BIN=target/release/foolmap DATA_ROOT=../shared/data DEVICE=wgpu SECONDS_PER_RUN=300 \
#     OUT=runs/sweep bash scripts/sweep_resnet20.sh
set -uo pipefail
BIN=${BIN:-target/release/foolmap}
DATA_ROOT=${DATA_ROOT:-../shared/data}
DEVICE=${DEVICE:-wgpu}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-300}
EVAL_SECONDS=${EVAL_SECONDS:-240}
STEPS=${STEPS:-100000}
LR=${LR:-1e-4}
BATCH=${BATCH:-128}
OUT=${OUT:-runs/sweep}
EVAL_LIMIT=${EVAL_LIMIT:-10000}
mkdir -p "$OUT"

runs=()
for fooling in location topk center-mass; do
  case $fooling in
    center-mass) lambdas="0.25 1" ;;
    *) lambdas="2 10" ;;
  esac
  for interp in lrp_t grad_cam simple_grad_t; do
    for lam in $lambdas; do runs+=("$fooling $interp $lam"); done
  done
done
runs+=("active lrp_t 10" "active grad_cam 10")

for r in "${runs[@]}"; do
  set -- $r
  name="$1-$2-l$3"
  "$BIN" fool --data-root "$DATA_ROOT" --device "$DEVICE" --arch resnet20 --fooling "$1" \
    --interpreter "$2" --lambda "$3" --lr "$LR" --batch-size "$BATCH" --steps "$STEPS" \
    --checkpoint-every 1000 --time-limit "$SECONDS_PER_RUN" --quiet --out "$OUT/$name" \
    >"$OUT/$name.fool.log" 2>&1 &
done
wait
echo "fooling done: $(ls "$OUT"/*/final.safetensors 2>/dev/null | wc -l) runs finished"

for r in "${runs[@]}"; do
  set -- $r
  name="$1-$2-l$3"
  [ -f "$OUT/$name/final.safetensors" ] || continue
  timeout "$EVAL_SECONDS" "$BIN" eval --data-root "$DATA_ROOT" --device "$DEVICE" \
    --fooled "$OUT/$name/final.safetensors" --limit "$EVAL_LIMIT" --batch-size 500 \
    --interpreters lrp_t,grad_cam,simple_grad_t --json >"$OUT/$name/eval.json" 2>"$OUT/$name.eval.log" &
done
wait
echo "eval done: $(grep -l top1 "$OUT"/*/eval.json 2>/dev/null | wc -l) evaluations"
