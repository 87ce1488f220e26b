#!/usr/bin/env bash
# Baseline vs constrained: the energy error along the rollouts of two (or more)
# dynamics runs of the same system, side by side. Reads each run folder's
# rollout.csv (written by `symc train`) and prints, at every STRIDE-th time
# (default 20), the mean over test starts of |E(x̂(t)) − E(x(t))|.
#
# Usage: scripts/compare-energy.sh RUN_DIR RUN_DIR [RUN_DIR…]
set -euo pipefail
if (($# < 2)); then
    echo "usage: $0 RUN_DIR RUN_DIR [RUN_DIR…]" >&2
    exit 2
fi
files=()
for run in "$@"; do
    [[ -f "$run/rollout.csv" ]] || { echo "$run has no rollout.csv (not a dynamics run?)" >&2; exit 1; }
    files+=("$run/rollout.csv")
done
awk -F, -v stride="${STRIDE:-20}" '
    FNR == 1 { run++; name[run] = FILENAME; sub(/\/rollout\.csv$/, "", name[run]); sub(/.*\//, "", name[run]); next }
    {
        t = $2
        if (!(t in index_of)) { index_of[t] = ++times; time[times] = t }
        e = $4 - $3
        sum[run, t] += (e < 0 ? -e : e)
        count[run, t]++
    }
    END {
        printf "%10s", "t"
        for (r = 1; r <= run; r++) printf " %24s", name[r]
        printf "\n"
        for (i = 1; i <= times; i += stride) {
            t = time[i]
            printf "%10.3f", t
            for (r = 1; r <= run; r++) printf " %24.4e", count[r, t] ? sum[r, t] / count[r, t] : "nan"
            printf "\n"
        }
    }' "${files[@]}"
