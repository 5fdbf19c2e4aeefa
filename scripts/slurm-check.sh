#!/usr/bin/env bash
# Run the real SLURM test on this machine (as root; Debian): start a single-node cluster
# (.ci/local-slurm.sh, no accounting database), run the SLURM test of tests/test_workflow.py
# through `--profile profiles/slurm` against a local run, and stop the daemons it started.
# Usage: bash scripts/slurm-check.sh        (from the checkout, with the dev venv active)
set -euo pipefail
cd "$(dirname "$0")/.."
export ACCOUNTING=${ACCOUNTING:-none} FAKE_GPUS=${FAKE_GPUS:-2}
trap 'bash .ci/local-slurm.sh down' EXIT
bash .ci/local-slurm.sh up
python -m pytest -p no:cacheprovider -q tests/test_workflow.py -k "slurm" -rs
