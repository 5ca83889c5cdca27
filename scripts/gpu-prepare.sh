#!/usr/bin/env bash
# Prepares `.gpu/` for scripts/gpu-bench.sh, on the machine that builds (it needs cargo, apt and
# the data mirror; the GPU machine has none of them). What it puts there travels to a lent GPU
# machine as one carried folder (at most 64 MiB with the working tree):
#
#   .gpu/foolmap.xz       the release binary with `--features gpu` (wgpu with fusion + autotune),
#                         stripped and compressed
#   .gpu/gl/*.deb         the Vulkan / EGL loader packages (the GPU machine has the driver only)
#   .gpu/data/            a small data root: the two pretrained weight files, 100 CIFAR-10
#                         training images per class and the first 100 ImageNet samples (for the
#                         end-to-end rows; the VGG-16 and ResNet-50 rows use random weights anyway)
#
# Usage: bash scripts/gpu-prepare.sh [DATA_ROOT]   (default: $FOOLMAP_DATA, then ../shared/data)
# Then, with the device tool: run(command="bash scripts/gpu-bench.sh", carry=[".gpu"]).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
data=${1:-${FOOLMAP_DATA:-../shared/data}}
for f in weights/resnet20_cifar10.safetensors weights/squeezenet1_0_imagenet.safetensors; do
  [ -f "$data/$f" ] || { echo "gpu-prepare: $data/$f is missing (give the data root as the first argument)" >&2; exit 2; }
done

cargo build --release -p foolmap-trainer --features gpu
stage=.gpu.new
rm -rf "$stage"
mkdir -p "$stage/gl" "$stage/data/weights" "$stage/data/cifar10/train" "$stage/data/imagenet-samples"
target/release/foolmap --version | grep -q "gpu: wgpu" || { echo "gpu-prepare: the binary has no wgpu backend" >&2; exit 1; }
# Stripped it is still about 83 MB (wgpu, naga, CubeCL's kernels); xz makes it about 14 MB.
strip -o "$stage/foolmap" target/release/foolmap
xz -9 -T0 "$stage/foolmap"

# Loader packages for amd64, whatever this machine's architecture (device README).
lists=$(mktemp -d)
opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
mkdir -p "$lists/partial"
apt-get "${opts[@]}" update >/dev/null 2>&1
(cd "$stage/gl" && apt-get "${opts[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
ls "$stage"/gl/libvulkan1_*.deb >/dev/null || { echo "gpu-prepare: apt-get could not download libvulkan1" >&2; exit 1; }
rm -rf "$lists"

cp "$data/weights/resnet20_cifar10.safetensors" "$data/weights/squeezenet1_0_imagenet.safetensors" "$stage/data/weights/"
# The first 100 files (by name) of `$1` matching `$2`, copied into `$3`.
first100() {
  local files
  mapfile -t files < <(find "$1" -maxdepth 1 -name "$2" | sort)
  [ "${#files[@]}" -gt 0 ] || { echo "gpu-prepare: no $2 in $1" >&2; exit 2; }
  cp -t "$3" "${files[@]:0:100}"
}
for class in "$data"/cifar10/train/*/; do
  name=$(basename "$class")
  mkdir -p "$stage/data/cifar10/train/$name"
  first100 "$class" '*.png' "$stage/data/cifar10/train/$name"
done
first100 "$data/imagenet-samples" '*.JPEG' "$stage/data/imagenet-samples"

rm -rf .gpu
mv "$stage" .gpu
size=$(du -sm .gpu | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cm 2>/dev/null | tail -n 1 | cut -f1)
echo "gpu-prepare: .gpu is ${size} MiB, the tracked tree about ${tree} MiB (the device tool takes 64 MiB in all)"
