#!/bin/bash
# svag_jax on a Cloud TPU pod slice: one run of one config over all TPU VM workers.
#
#   launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.x=v ...]
#   launch/tpu_pod.sh my-v4-32 us-central2-b configs/fast_equilibrium.py /mnt/shared/runs/fe
#
# Runs the same command on every worker (`gcloud ... ssh --worker=all`); with SVAG_DISTRIBUTED=1
# `jax.distributed.initialize()` finds the coordinator, process count and id from the TPU
# metadata, one process per worker driving its local TPU chips, and the trials are sharded over
# the chips of all workers. Each worker needs the repository at REPO_DIR with its environment (e.g.
# `--worker=all --command="git clone ... && cd svag_jax && python -m venv .venv &&
# .venv/bin/pip install -e . 'jax[tpu]'"`) and WORKDIR on a filesystem all workers mount at the same
# path (Filestore NFS, or a bucket mounted with gcsfuse): checkpoints are written by all workers.
# Preemption (SIGTERM to the workers) checkpoints at a common step; rerun the command to resume.
# Environment: REPO_DIR (default svag_jax, relative to the home directory on the workers),
# PYTHON (default .venv/bin/python), GCLOUD_FLAGS (extra flags for gcloud, e.g. --project=P).

set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.x=v ...]" >&2
  exit 2
fi
TPU_NAME=$1
ZONE=$2
CONFIG=$3
WORKDIR=$4
shift 4
REPO_DIR=${REPO_DIR:-svag_jax}
PYTHON=${PYTHON:-.venv/bin/python}

remote="cd $(printf '%q' "$REPO_DIR") && SVAG_DISTRIBUTED=1 $(printf '%q' "$PYTHON") -m svag_jax.launch.main"
remote+=" --config=$(printf '%q' "$CONFIG") --workdir=$(printf '%q' "$WORKDIR")"
for arg in "$@"; do
  remote+=" $(printf '%q' "$arg")"
done

# shellcheck disable=SC2086  # GCLOUD_FLAGS is a list of flags
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all ${GCLOUD_FLAGS:-} \
  --command="$remote"
