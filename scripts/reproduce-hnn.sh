#!/usr/bin/env bash
# Reproduces the HNN paper's energy study (ideal mass-spring, ideal pendulum,
# two-body, three-body: baseline MLP vs Hamiltonian network) and the LNN
# paper's double-pendulum energy error (baseline vs Lagrangian network), three
# seeds each, 2000 full-batch Adam steps, release build. Prints a Markdown
# table: mean ± sample standard deviation over the seeds, and the paper's figure.
#
# Usage: scripts/reproduce-hnn.sh [SYSTEM…]   (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench hnn --no-run
exec cargo bench --quiet --bench hnn -- reproduce "$@"
