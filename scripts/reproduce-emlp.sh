#!/usr/bin/env bash
# Reproduces the headline results of EMLP (Finzi, Welling & Wilson, 2021): test MSE
# at N = 1000 training samples, plain MLP against EMLP, on the O(5) synthetic task,
# the O(3) inertia task and Lorentz-invariant electron–muon scattering.
#
# Protocol (the specs carry it): 1000 train / 1000 validation / 5000 test samples,
# batch 500, Adam lr 3e-3, 1800 steps (900 epochs), test MSE at the best
# validation checkpoint (o5_emlp adds weight decay 0.01); 3 seeds (initial
# parameters and minibatch order).
# Each run is followed by `symc check` with 100 fresh group elements.
#
# Usage: scripts/reproduce-emlp.sh
#   TASKS="o5 inertia lorentz"  MODELS="mlp emlp"  SEEDS="0 1 2"  OUT=runs/reproduce-emlp
#   SYMC=path/to/symc (a fixed binary, e.g. a copy, so that rebuilding meanwhile does not change it)
# Finished runs (a folder with report.yaml and check.txt) are kept and not rerun,
# so the script can be stopped and resumed.
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS=${TASKS:-"o5 inertia lorentz"}
MODELS=${MODELS:-"mlp emlp"}
SEEDS=${SEEDS:-"0 1 2"}
OUT=${OUT:-runs/reproduce-emlp}

if [[ -z ${SYMC:-} ]]; then
  cargo build --release --quiet
fi
symc=${SYMC:-target/release/symc}

# EMLP's published mean test MSE (N = 1000), by task and model.
reference() {
  case "$1-$2" in
    o5-mlp) echo 0.089 ;; o5-emlp) echo 0.017 ;;
    inertia-mlp) echo 3.24 ;; inertia-emlp) echo 0.060 ;;
    lorentz-mlp) echo 0.364 ;; lorentz-emlp) echo 3.3e-4 ;;
  esac
}

# Seeds outermost, so that a partial run still covers every task and model.
for seed in $SEEDS; do
  for task in $TASKS; do
    for model in $MODELS; do
      spec=specs/${task}_${model}.sym
      run=$OUT/${task}_${model}-seed$seed
      if [[ -f $run/report.yaml && -f $run/check.txt ]]; then
        continue
      fi
      rm -rf "$run"
      echo "== $spec, seed $seed" >&2
      if ! "$symc" train "$spec" --seed "$seed" --out "$run" >&2; then
        echo "== $spec, seed $seed: training failed" >&2
        continue
      fi
      # A failed certificate is a result to report, not a reason to stop.
      "$symc" check "$spec" --run "$run" --samples 100 --seed $((1000 + seed)) > "$run/check.txt" || true
    done
  done
done

# mean ± sample standard deviation of the numbers on stdin
stats() {
  awk '{ s += $1; q += $1 * $1; n++ }
       END { if (n == 0) { print "-"; exit }
             m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0
             printf "%.3g ± %.2g (n=%d)", m, sqrt(v > 0 ? v : 0), n }'
}

printf '%-8s %-5s %-28s %-8s %-24s %s\n' task model "test MSE (mean ± sd)" EMLP "check error (mean ± sd)" verdicts
for task in $TASKS; do
  for model in $MODELS; do
    runs=$(ls -d "$OUT/${task}_${model}"-seed* 2>/dev/null || true)
    mse=$(for r in $runs; do awk '/^test_mse:/ { print $2 }' "$r/report.yaml" 2>/dev/null; done | stats)
    # check.txt: a header line, the table's header, then one row per symmetry.
    err=$(for r in $runs; do awk 'NR == 3 { print $3 }' "$r/check.txt" 2>/dev/null; done | stats)
    verdicts=$(for r in $runs; do awk 'NR == 3 { print $5 }' "$r/check.txt" 2>/dev/null; done | sort | uniq -c | xargs)
    printf '%-8s %-5s %-28s %-8s %-24s %s\n' "$task" "$model" "$mse" "$(reference "$task" "$model")" "$err" "$verdicts"
  done
done
