#!/usr/bin/env bash
# The GPU rows of BENCHMARKS.md in one call on a lent GPU machine (no cargo, no network there;
# PyTorch with CUDA is installed). Prepare `.gpu/` first with scripts/gpu-prepare.sh, then:
#
#   run(command="bash scripts/gpu-bench.sh", carry=[".gpu"], timeout_s=600)
#
# It runs `foolmap bench --device wgpu --suite compare --reference torch` (foolmap on wgpu, the
# same steps in PyTorch on CUDA, in the same run) and samples nvidia-smi every 0.5 s. Everything
# lands in $OUT (or ./gpu-out): BENCHMARKS-goal.md and BENCHMARKS-big.md with a `wgpu compare`
# block each, bench-*.log (the progress rows, also when a time limit cuts a run short), smi.csv,
# version.txt, gpu.csv. Copy the blocks into BENCHMARKS.md here.
#
# Environment: CASES1 / SECONDS1 (default: ResNet-20 batch 128 and 32, SqueezeNet batch 4; 300 s)
# and CASES2 / SECONDS2 (VGG-16 and ResNet-50 batch 2; 220 s): inside the device tool's 600 s.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
mkdir -p "$out"
g=.gpu
[ -f "$g/foolmap.xz" ] || { echo "gpu-bench: $g/foolmap.xz is missing: run scripts/gpu-prepare.sh and carry .gpu" >&2; exit 2; }
bin=/tmp/foolmap-gpu
python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
  "$g/foolmap.xz" "$bin" && chmod +x "$bin" || { echo "gpu-bench: could not unpack $g/foolmap.xz" >&2; exit 2; }

# Vulkan loader: the GPU machine has the NVIDIA driver and its ICD, not the loader.
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for f in "$g"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.csv"
"$bin" --version | tee "$out/version.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' | tee -a "$out/version.txt"

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 >"$out/smi.csv" 2>/dev/null &
smi=$!
# Two bench runs, each with its own time limit, so that a slow second part (the 224² models'
# many new shapes cost autotuning and JIT time) cannot lose the first part's block: first the
# rows the goal names (ResNet-20, SqueezeNet), then VGG-16 and ResNet-50.
phase() { # name, cases, seconds
  local start rc
  start=$(date +%s)
  timeout "$3" "$bin" bench --device wgpu --suite compare --reference torch \
    --data-root "$g/data" --out "$out/BENCHMARKS-$1.md" --cases "$2" 2>&1 | tee "$out/bench-$1.log"
  rc=${PIPESTATUS[0]}
  echo "gpu-bench: $1 rc $rc after $(( $(date +%s) - start )) s" | tee -a "$out/bench-$1.log"
  return "$rc"
}
phase goal "${CASES1:-resnet20:128,resnet20:32,squeezenet1_0:4}" "${SECONDS1:-300}"
rc1=$?
phase big "${CASES2:-resnet50:2,vgg16:2}" "${SECONDS2:-220}"
rc2=$?
kill "$smi" 2>/dev/null
exit $(( rc1 != 0 ? rc1 : rc2 ))
