#!/usr/bin/env bash
# Trains p4, p4m and plain CNNs on upright 8×8 digits and prints their test
# accuracy on the test digits turned by quarter turns and mirrored.
# Usage: scripts/digits-experiment.sh [steps]   (default 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release --example digits_experiment -- "$@"
