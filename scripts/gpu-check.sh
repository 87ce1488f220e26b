#!/usr/bin/env bash
# On a GPU machine: checks the CUDA bundle's toolchain with its cuda-probe, then trains bundled specs briefly
# on `cuda` and on `cpu` with the same seed and prints for each the final training MSE of both devices, their
# steps per second and the speed-up. Fails if a run fails or the two losses differ by more than the relative
# tolerance. Three runs per spec of at most SYMC_GPU_CHECK_TIMEOUT seconds each keep three specs under 5 minutes.
#
# Usage: scripts/gpu-check.sh [BUNDLE]   (default target/cuda-bundle, written by scripts/build-cuda.sh)
# Environment (all optional):
#   SYMC_GPU_CHECK_RUNS     "SPEC:STEPS ..." (default "specs/o5_mlp.sym:200 specs/o5_emlp.sym:50
#                           specs/mass_spring_hnn.sym:500": an MLP, an EMLP and an HNN)
#   SYMC_GPU_CHECK_RTOL     relative tolerance between the devices' final train_mse (default 0.01)
#   SYMC_GPU_CHECK_TIMEOUT  seconds allowed for one training run (default 30)
#   SYMC_GPU_CHECK_SEED     training seed (default 0)
#   SYMC_GPU_CHECK_OUT      folder for the runs' output (default: a fresh temporary folder)
# The bundle's launcher finds the CUDA libraries itself: see SYMC_CUDA_LIB_DIRS and SYMC_CUDA_PYTHON in
# docs/cuda.md.
set -euo pipefail

die() {
    printf 'gpu-check: error: %s\n' "$*" >&2
    exit 1
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="${1:-$repo/target/cuda-bundle}"
read -ra runs <<<"${SYMC_GPU_CHECK_RUNS:-specs/o5_mlp.sym:200 specs/o5_emlp.sym:50 specs/mass_spring_hnn.sym:500}"
rtol="${SYMC_GPU_CHECK_RTOL:-0.01}"
limit="${SYMC_GPU_CHECK_TIMEOUT:-30}"
seed="${SYMC_GPU_CHECK_SEED:-0}"
out="${SYMC_GPU_CHECK_OUT:-$(mktemp -d /tmp/symc-gpu-check.XXXXXX)}"
symc="$bundle/symc"

[[ -x "$symc" ]] || die "no CUDA bundle at $bundle: build one with scripts/build-cuda.sh and copy it here"
command -v nvidia-smi >/dev/null || die "nvidia-smi is not on PATH: this is not a GPU machine"
for run in "${runs[@]}"; do
    spec="$repo/${run%:*}"
    [[ "$run" == *:* && -f "$spec" ]] ||
        die "'$run' is not SPEC:STEPS with an existing spec; specs here: $(cd "$repo" && echo specs/*.sym)"
done

built_cap="$(sed -n 's/^compute_cap: //p' "$bundle/BUILD-INFO")"
gpu="$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader | head -n 1)"
gpu_cap="$(tr -d ' .' <<<"${gpu##*,}")"
echo "gpu: $gpu; driver supports $(nvidia-smi | grep -o 'CUDA Version: [0-9.]*')"
echo "bundle: kernels for sm_$built_cap; symc needs $(sed -n 's/^symc_needs: //p' "$bundle/BUILD-INFO")"
((gpu_cap >= built_cap)) || die "the bundle's kernels are for sm_$built_cap, newer than this GPU (sm_$gpu_cap)"
# cuBLAS may use TF32 for FP32 matmuls where allowed; forbid it so both devices compute in FP32.
export NVIDIA_TF32_OVERRIDE=0
# The toolchain first, apart from symc: cuBLAS, the nvcc-built and the NVRTC-built kernels against the CPU.
"$bundle/cuda-probe" || die "cuda-probe failed: the CUDA build itself does not work on this machine"

# train SPEC STEPS DEVICE DIR: one run, its log beside its report; prints why it failed.
train() {
    if ! timeout "$limit" "$symc" train "$1" --out "$4" --steps "$2" --seed "$seed" --device "$3" \
        >"$4.log" 2>&1; then
        echo "gpu-check: \`symc train $1 --steps $2 --device $3\` failed or ran past ${limit} s; its log ends:" >&2
        tail -n 20 "$4.log" >&2
        if [[ "$3" == cuda ]] && grep -q UNSUPPORTED_PTX_VERSION "$4.log"; then
            echo "gpu-check: the driver is older than the NVRTC it was given: see docs/cuda.md" >&2
        fi
        return 1
    fi
}

# report_value FILE KEY: the first `KEY: number` in a report.yaml, at any depth.
report_value() {
    awk -v key="$2:" '$1 == key { print $2; found = 1; exit } END { exit !found }' "$1" ||
        die "$1 has no $2"
}

start=$SECONDS
status=0
printf '%-26s %6s %12s %12s %9s %11s %11s %8s\n' \
    spec steps "cpu mse" "cuda mse" "rel diff" "cpu step/s" "cuda step/s" speed-up
for run in "${runs[@]}"; do
    spec="${run%:*}" steps="${run##*:}" name="$(basename "${run%:*}" .sym)"
    # A short first run on the GPU compiles and caches the kernels, so the timed run measures training only.
    train "$repo/$spec" 5 cuda "$out/$name-warmup" || {
        status=1
        continue
    }
    for device in cpu cuda; do
        train "$repo/$spec" "$steps" "$device" "$out/$name-$device" || status=1
    done
    [[ -f "$out/$name-cpu/report.yaml" && -f "$out/$name-cuda/report.yaml" ]] || continue
    cpu_mse="$(report_value "$out/$name-cpu/report.yaml" train_mse)"
    cuda_mse="$(report_value "$out/$name-cuda/report.yaml" train_mse)"
    cpu_sps="$(report_value "$out/$name-cpu/report.yaml" steps_per_second)"
    cuda_sps="$(report_value "$out/$name-cuda/report.yaml" steps_per_second)"
    read -r rel verdict < <(awk -v a="$cpu_mse" -v b="$cuda_mse" -v tol="$rtol" 'BEGIN {
        d = a - b; d = d < 0 ? -d : d; m = a < 0 ? -a : a; n = b < 0 ? -b : b; m = m > n ? m : n
        r = m > 0 ? d / m : 0; printf "%.2e %s\n", r, (r <= tol ? "ok" : "DIFFER") }')
    [[ "$verdict" == ok ]] || status=1
    printf '%-26s %6s %12.5e %12.5e %9s %11.1f %11.1f %7.2fx  %s\n' "$spec" "$steps" "$cpu_mse" "$cuda_mse" \
        "$rel" "$cpu_sps" "$cuda_sps" "$(awk -v a="$cpu_sps" -v b="$cuda_sps" 'BEGIN { print b / a }')" "$verdict"
done
echo "losses must agree within relative tolerance $rtol; runs in $out; took $((SECONDS - start)) s"
exit "$status"
