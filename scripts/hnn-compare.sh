#!/usr/bin/env bash
# symc against the PyTorch peer on the same HNN task (ideal mass-spring, MLP
# 2-200-200-1 tanh, 750 points full batch, Adam 1e-3, 2000 steps), both on CPU
# with 2 threads. Prints both and the ratio.
#
# The peer runs when its Python env exists (PEER_PYTHON, default
# /tmp/symc-peers/bin/python; `bash shared/peers/setup.sh` creates it, a 5 GB
# download); otherwise the figures measured on this kind of machine in
# shared/peers/RESULTS.md are used and the output says so.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SYMC_SHARED:-$root/../shared}"
python="${PEER_PYTHON:-/tmp/symc-peers/bin/python}"
steps="${STEPS:-2000}"

cd "$root"
symc_out="$(SYMC_THREADS=2 cargo bench --quiet --bench hnn -- "$steps")"
echo "$symc_out"

if [[ -x "$python" && -f "$shared/peers/hnn_torch.py" ]]; then
    peer_out="$("$python" "$shared/peers/hnn_torch.py" --threads 2 --steps "$steps" | grep -v '^JSON')"
    echo "$peer_out"
    torch_hnn="$(awk '$1 == "hnn" && $2 == "threads=2" { print $4 }' <<<"$peer_out")"
    torch_base="$(awk '$1 == "baseline" && $2 == "threads=2" { print $4 }' <<<"$peer_out")"
    source="measured now"
else
    # | HNN | 2 | **9.947** (…) | … : the median of 3 runs.
    pick() { awk -F'|' -v m="$1" '$2 ~ "^ *"m" *$" && $3 ~ /^ *2 *$/ { gsub(/[ *]/, "", $4); sub(/\(.*/, "", $4); print $4 }' "$shared/peers/RESULTS.md"; }
    torch_hnn="$(pick HNN)"
    torch_base="$(pick baseline)"
    source="from shared/peers/RESULTS.md (2000 steps, no peer env here)"
fi

symc_hnn="$(awk '$2 == "hnn" { print $4 }' <<<"$symc_out")"
symc_base="$(awk '$2 == "baseline" { print $4 }' <<<"$symc_out")"
echo
echo "torch figures: $source"
printf '%-9s %10s %10s %8s\n' model "torch s" "symc s" speedup
for m in hnn baseline; do
    t="torch_$m"; s="symc_$m"
    [[ $m == baseline ]] && { t=torch_base; s=symc_base; }
    awk -v m="$m" -v t="${!t}" -v s="${!s}" 'BEGIN { printf "%-9s %10.3f %10.3f %7.2fx\n", m, t, s, t / s }'
done
