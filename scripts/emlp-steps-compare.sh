#!/usr/bin/env bash
# Training steps per second of symc and of emlp on the O(5) task, measured
# one after the other on this machine (batch 500, EMLP with 384 channels and
# 3 layers, and the plain MLP baseline of the same size).
#
#   scripts/emlp-steps-compare.sh [EMLP_STEPS]
#
# symc: `cargo bench --bench steps` (release). emlp: the peer program
# `emlp_o5_train.py` run in the peers' Python environment, EMLP capped at
# EMLP_STEPS steps (default 20; one emlp EMLP step takes seconds). Set
# SYMC_PEERS (folder of emlp_o5_train.py, default ./peers) and
# SYMC_PEERS_PYTHON (default /tmp/symc-peers/bin/python, what the peers'
# setup.sh creates). Without them, only symc is measured.
set -euo pipefail

cd "$(dirname "$0")/.."
emlp_steps="${1:-20}"
peers="${SYMC_PEERS:-peers}"
python="${SYMC_PEERS_PYTHON:-/tmp/symc-peers/bin/python}"

echo "== symc (cargo bench --bench steps)"
cargo bench --quiet --bench steps

if [[ -f "$peers/emlp_o5_train.py" && -x "$python" ]]; then
    echo "== emlp ($peers/emlp_o5_train.py, EMLP capped at $emlp_steps steps)"
    JAX_PLATFORMS=cpu "$python" "$peers/emlp_o5_train.py" --max-steps "emlp=$emlp_steps" --n-equiv 500 |
        "$python" -c '
import json, sys
for line in sys.stdin:
    if line.startswith("JSON "):
        r = json.loads(line[5:])
        print(f"emlp {r[\"model\"]:<5} ({r[\"n_params\"]} params) {r[\"steps_per_s\"]:9.2f} steps/s {r[\"step_ms\"]:10.2f} ms/step")
'
else
    echo "== emlp skipped: no $peers/emlp_o5_train.py or no Python at $python" >&2
fi
