#!/usr/bin/env bash
# Runs the latent method on the observed oscillator (specs/oscillator_latent.sym)
# at 1% and 10% noise and prints one table row per run: what the learned
# latent generator's spectrum says, and how well the flow predicts held-out pairs.
#
#   cargo build --release && scripts/latent_table.sh
#
# Each run writes its folder (found.sym, report.yaml, heatmap) under
# target/latent-table/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
symc="$root/target/release/symc"
out="$root/target/latent-table"
mkdir -p "$out"
echo "| noise | nearest built-in (angle) | ‖Re λ‖/‖Im λ‖ | \|tr G\|/‖G‖ | t̄ ± std | val prediction (own t) | val prediction (t̄) | val x′ ≈ x | seconds |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for noise in 0.01 0.1; do
  run="$out/$noise"
  mkdir -p "$run"
  sed "s/noise = 0.01/noise = $noise/" "$root/specs/oscillator_latent.sym" > "$run/learn.sym"
  start=$(date +%s.%N)
  "$symc" discover "$run/learn.sym" --out "$run" > "$run/stdout.txt" 2> "$run/stderr.txt"
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  python3 - "$run/report.yaml" "$noise" "$seconds" <<'PY'
import sys, yaml
path, noise, seconds = sys.argv[1:]
r = yaml.safe_load(open(path))
latent, nearest = r["latent"], r["algebras"][0]
spectrum = latent["spectra"][0]
t = f'{latent["coefficient_mean"][0]:.3f} ± {latent["coefficient_std"][0]:.3f}'
print(f'| {float(noise):.0%} | {nearest["name"]} ({max(nearest["angles_deg"]):.2f}°) '
      f'| {spectrum["real_to_imaginary"]:.1e} | {spectrum["trace_ratio"]:.1e} | {t} '
      f'| {r["loss"]["val"]:.2e} | {latent["shared_prediction"]:.2e} | {latent["baseline"]:.2e} | {float(seconds):.1f} |')
PY
done
