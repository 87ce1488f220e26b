#!/usr/bin/env bash
# Cold equivariant-basis solves, symc next to emlp, every case in a fresh process.
#
# Usage: scripts/basis-compare.sh
#   PEERS_VENV  the emlp virtual environment (default /tmp/symc-peers, made by peers/setup.sh)
#   PEERS_DIR   the folder holding emlp_basis.py (default: peers/ next to or above the repository)
# Without the environment only symc's column is filled.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PEERS_VENV:-/tmp/symc-peers}"
peers="${PEERS_DIR:-}"
if [[ -z "$peers" ]]; then
  for candidate in "$root/peers" "$root/../shared/peers"; do
    [[ -f "$candidate/emlp_basis.py" ]] && peers="$candidate" && break
  done
fi
have_peer=false
if [[ -x "$venv/bin/python" && -n "$peers" ]]; then
  have_peer=true
else
  echo "note: no emlp environment at $venv (or no emlp_basis.py); showing symc only" >&2
fi

cargo build --quiet --release --example basis_timing --manifest-path "$root/Cargo.toml"
bin="$root/target/release/examples/basis_timing"

field() { sed -n "s/^$1: //p"; }
echo "| case | symc dim | symc cold (s) | emlp rank | emlp cold (s) | emlp warm (s) | cold speed-up |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
while IFS= read -r name; do
  ours="$("$bin" "$name")"
  dim="$(field dimension <<<"$ours")"
  secs="$(field seconds <<<"$ours")"
  rank="-" cold="-" warm="-" speedup="-"
  if $have_peer; then
    json="$(JAX_PLATFORMS=cpu TQDM_DISABLE=1 "$venv/bin/python" "$peers/emlp_basis.py" --one "$name" 2>/dev/null \
      | sed -n 's/^JSON //p' || true)"
    if [[ -n "$json" ]]; then
      read -r rank cold warm < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["rank"], "%.3f" % r["cold_s"], "%.3f" % r["warm_s"])' "$json")
      speedup="$(python3 -c 'import sys; print("%.0fx" % (float(sys.argv[1]) / max(float(sys.argv[2]), 1e-9)))' "$cold" "$secs")"
    fi
  fi
  echo "| $name | $dim | $secs | $rank | $cold | $warm | $speedup |"
done < <("$bin" --list)
