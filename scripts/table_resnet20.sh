#!/usr/bin/env bash
# The issue's 3 × 3 table on CIFAR-10 ResNet-20: {location, topk, center-mass} × {lrp_t, grad_cam,
# simple_grad_t}, each with the schedule measured in EXPERIMENTS.md (a large λ, then smaller λ and
# learning rate via `--then`), validated every VAL_EVERY steps on training images held out of
# fine-tuning; `best.safetensors` is the highest-FSR model within 2 points of the original's top-1
# on those images. Then `foolmap eval --json` of best (else final) on the 10,000 test images, scored
# with all three interpreters (the transfer matrix). PARALLEL runs at a time.
#
#   BIN=target/release/foolmap DATA_ROOT=../shared/data DEVICE=wgpu PARALLEL=9 OUT=runs/table \
#     bash scripts/table_resnet20.sh
#
# Results: $OUT/<fooling>-<interp>/{config.json,log.jsonl,val.jsonl,best.json,best.safetensors,
# final.safetensors,eval.json}; a summary table is printed at the end (needs python3).
set -uo pipefail
BIN=${BIN:-target/release/foolmap}
DATA_ROOT=${DATA_ROOT:-../shared/data}
DEVICE=${DEVICE:-cpu}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-}  # a wall-clock cap per run; empty: the recipe's steps
PARALLEL=${PARALLEL:-2}
BATCH=${BATCH:-32}
VAL_EVERY=${VAL_EVERY:-200}
# The held-out training images overstate the drop (the original trained on them: 99.9 % top-1);
# measured: 5.2 points on them for 3.2 on the test split. Raise MAX_DROP to compensate, or pass
# a real validation folder with EXTRA="--val-data DIR".
MAX_DROP=${MAX_DROP:-0.02}
EXTRA=${EXTRA:-}
OUT=${OUT:-runs/table}
EVAL_LIMIT=${EVAL_LIMIT:-10000}
ONLY=${ONLY:-}   # e.g. ONLY=topk-grad_cam: only the recipes whose name contains it
mkdir -p "$OUT"

# fooling interpreter steps λ lr [STEP:λ:lr ...]: phase 1 at λ, lr; from each STEP on the next
# phase (`--then`, cumulative steps). These are the schedules measured on CPU (EXPERIMENTS.md §3,
# §7–§12), run there as separate continuations (each with a new data order and a fresh Adam state)
# and here as one run, so the figures will not repeat bit for bit (one phase each of Location/LRP
# and Top-k/SimpleGrad ran on the H200 on 1,500 training images per class, §9). Every cell met the
# target (FSR ≥ 80 % within 2 points) on CPU. SimpleGrad needs a 10× larger learning rate, not only
# a larger λ, for a short first phase; Center-mass/SimpleGrad also needs that phase at batch 128 (a
# phase's fourth field is its batch size; the other phases run at BATCH) and ends with λ 0 (§13).
recipes=(
  "location grad_cam 4292 10 1e-4 815:2:5e-5"
  "location lrp_t 9163 10 1e-4 757:2:5e-5 3472:6:5e-5 4763:2:5e-5"
  "location simple_grad_t 20814 300 1e-3 400:30:1e-4 1500:20:5e-5 6000:10:5e-5 17000:5:5e-5"
  "topk grad_cam 8715 10 1e-4 753:2:5e-5 6329:1:5e-5"
  "topk lrp_t 12385 10 1e-4 800:2:5e-5 9033:1:5e-5"
  "topk simple_grad_t 16060 300 1e-3 600:30:1e-4 3407:10:1e-4 4706:5:5e-5 13193:2:5e-5"
  "center-mass grad_cam 7233 1 1e-4 844:0.1:5e-5 3595:0.05:5e-5"
  "center-mass lrp_t 6013 1 1e-4 700:0.1:5e-5 1251:0.4:5e-5 2367:0.1:5e-5"
  "center-mass simple_grad_t 11750 30 1e-3 1:30:1e-3:128 350:3:1e-4 750:1.5:5e-5:32 2750:0.5:5e-5 5750:0.5:1e-5 7750:0:3e-5"
)

one() {
  set -- $1
  local name="$1-$2" dir="$OUT/$1-$2" fooling="$1" interp="$2" steps="$3" lambda="$4" lr="$5"
  shift 5
  local then=() limit=()
  for phase in "$@"; do then+=(--then "$phase"); done
  [ -n "$SECONDS_PER_RUN" ] && limit=(--time-limit "$SECONDS_PER_RUN")
  "$BIN" fool --data-root "$DATA_ROOT" --device "$DEVICE" --arch resnet20 --fooling "$fooling" \
    --interpreter "$interp" --lambda "$lambda" --lr "$lr" "${then[@]}" --batch-size "$BATCH" \
    --steps "$steps" "${limit[@]}" --val-every "$VAL_EVERY" --max-drop "$MAX_DROP" $EXTRA \
    --checkpoint-every 1000 --quiet --out "$dir" >"$OUT/$name.fool.log" 2>&1
  local w="$dir/best.safetensors"
  [ -f "$w" ] || w="$dir/final.safetensors"
  [ -f "$w" ] || return
  "$BIN" eval --data-root "$DATA_ROOT" --device "$DEVICE" --fooled "$w" --limit "$EVAL_LIMIT" \
    --interpreters lrp_t,grad_cam,simple_grad_t --json >"$dir/eval.json" 2>"$OUT/$name.eval.log"
}

running=0
for r in "${recipes[@]}"; do
  set -- $r
  case "$1-$2" in *"$ONLY"*) ;; *) continue ;; esac
  one "$r" &
  running=$((running + 1))
  if [ "$running" -ge "$PARALLEL" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

command -v python3 >/dev/null || exit 0
python3 - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| run | steps | top-1 orig → fooled | drop (points) | FSR lrp_t | FSR grad_cam | FSR simple_grad_t |")
print("|---|---|---|---|---|---|---|")
for d in sorted(p for p in out.iterdir() if (p / "eval.json").is_file()):
    e = json.loads((d / "eval.json").read_text())
    best = d / "best.json"
    step = json.loads(best.read_text())["step"] if best.is_file() else "final"
    o, f = e["original"]["top1"], e["fooled"]["top1"]
    fsr = {k: f'{100 * v["fsr"]:.1f} %' for k, v in e["interpreters"].items()}
    print(f'| {d.name} | {step} | {100*o:.2f} → {100*f:.2f} % | {100*(o-f):.2f} | '
          f'{fsr.get("lrp_t", "–")} | {fsr.get("grad_cam", "–")} | {fsr.get("simple_grad_t", "–")} |')
EOF
