#!/usr/bin/env bash
# Recovers known symmetries from built-in pair sets at 1% and 10% noise and
# prints one table row per run: the found span against the true one.
#
#   cargo build --release && scripts/discover_table.sh [steps]
#
# Each run writes its folder (found.sym, report.yaml, heatmaps) under
# target/discover-table/.
set -euo pipefail
steps="${1:-1500}"
root="$(cd "$(dirname "$0")/.." && pwd)"
symc="$root/target/release/symc"
out="$root/target/discover-table"
mkdir -p "$out"
echo "| data | generators | noise | |cos| | largest principal angle | nearest built-in | closure residual | val loss | seconds |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for case in rotation2_pairs:1 boost2_pairs:1 scaling2_pairs:1 rotation3_pairs:3 oscillator_pairs:1; do
  name="${case%%:*}"
  k="${case##*:}"
  # so(3) has as many generators as R³ has axes: a sample of one point would be
  # fitted by any span, so its samples hold four points turned together.
  dim=2 points=1
  [ "$name" = rotation3_pairs ] && dim=3 points=4
  for noise in 0.01 0.1; do
    run="$out/$name-$noise"
    mkdir -p "$run"
    cat > "$run/learn.sym" <<SPEC
model learn_$name {
  data     builtin.$name(train = 500, val = 100, test = 0, points = $points, noise = $noise, seed = 0)
  input    x: R^$((dim * points))
  output   x_next: R^$((dim * points))
  symmetry learn(generators = $k, dim = $dim) => operator
  export   group Found
  train    (steps = $steps, lr = 0.02, seed = 0)
}
SPEC
    start=$(date +%s.%N)
    "$symc" discover "$run/learn.sym" --out "$run" > "$run/stdout.txt" 2> "$run/stderr.txt"
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    python3 - "$run/report.yaml" "$name" "$k" "$noise" "$seconds" <<'PY'
import sys, re
path, name, k, noise, seconds = sys.argv[1:]
text = open(path).read()
# The report is flat enough to read without a YAML library.
truth = text[text.index("truth:"):]
angles = [float(a) for a in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", truth.split("cosine")[0])]
cos = re.search(r"cosine: ([0-9.e-]+)", truth)
nearest = re.search(r"algebras:\n- name: (\S+)", text).group(1)
residual = float(re.search(r"closure:\n  residual: ([0-9.e-]+)", text).group(1))
val = float(re.search(r"  val: ([0-9.e-]+)", text).group(1))
print(f"| {name} | {k} | {float(noise):.0%} | {float(cos.group(1)):.5f} | {max(angles):.2f}° | {nearest} | {residual:.1e} | {val:.2e} | {float(seconds):.1f} |"
      if cos else
      f"| {name} | {k} | {float(noise):.0%} | — | {max(angles):.2f}° | {nearest} | {residual:.1e} | {val:.2e} | {float(seconds):.1f} |")
PY
  done
done
