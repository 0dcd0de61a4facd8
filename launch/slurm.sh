#!/bin/bash
# svag_jax on a SLURM GPU cluster: one run of one config over N nodes x G GPUs.
#
#   sbatch launch/slurm.sh CONFIG WORKDIR [--config.x=v ...]
#   sbatch --nodes=4 --gpus-per-node=4 --ntasks-per-node=4 launch/slurm.sh \
#       configs/fast_equilibrium.py /shared/runs/fe --config.trials.num=128
#
# Submit from the repository root (the job runs there). srun starts one process per GPU
# (--ntasks-per-node = --gpus-per-node); `jax.distributed.initialize()` (SVAG_DISTRIBUTED=1) finds
# the coordinator, the process count and id in SLURM's variables and gives each process the GPU of
# its local rank, so the trials are sharded over all N x G GPUs. With --ntasks-per-node=1 (one
# process per node) the script makes all G GPUs of the node visible to that process instead.
# WORKDIR must be on a filesystem every node mounts at the same path (checkpoints are written by
# all processes). 120 s before the time limit every process gets SIGTERM: they checkpoint at the
# same step and stop with status 'preempted' and exit code 75; the job then requeues itself and
# resumes. Exit codes of launch.main (svag_jax.record.EXIT_CODES): 0 done, 1 failed, 3 diverged,
# 75 preempted (EX_TEMPFAIL: retry later); srun returns the highest of its tasks' codes, and the job
# is requeued on 75 only. Tasks are not killed when one exits non-zero (--kill-on-bad-exit=0): the
# first to finish preempting would otherwise have the others killed before they exit 75 too; a
# process that crashes makes the others fail through JAX's coordination service instead.
# Environment: PYTHON (default .venv/bin/python).
#
#SBATCH --job-name=svag_jax
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out

set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: sbatch launch/slurm.sh CONFIG WORKDIR [--config.x=v ...]" >&2
  exit 2
fi
CONFIG=$1
WORKDIR=$2
shift 2
PYTHON=${PYTHON:-.venv/bin/python}
cd "${SLURM_SUBMIT_DIR:-.}"

export SVAG_DISTRIBUTED=1
if [[ "${SLURM_NTASKS_PER_NODE:-1}" == 1 && -n "${SLURM_GPUS_ON_NODE:-}" ]]; then
  # One process per node: JAX would otherwise use only GPU <local rank> = 0 of each node.
  JAX_LOCAL_DEVICE_IDS=$(seq -s, 0 $((SLURM_GPUS_ON_NODE - 1)))
  export JAX_LOCAL_DEVICE_IDS
fi

echo "svag_jax: ${SLURM_NNODES} node(s), ${SLURM_NTASKS} process(es), config ${CONFIG}, workdir ${WORKDIR}"
# No `exec`: after srun returns, a preempted run (exit code 75) requeues the job.
rc=0
srun --kill-on-bad-exit=0 "$PYTHON" -m svag_jax.launch.main --config="$CONFIG" --workdir="$WORKDIR" "$@" \
  || rc=$?

case $rc in
  0) echo "svag_jax: done" ;;
  75) echo "svag_jax: preempted (exit code 75): requeueing job ${SLURM_JOB_ID}"
      scontrol requeue "$SLURM_JOB_ID" ;;
  3) echo "svag_jax: all trials diverged (exit code 3); see ${WORKDIR}/status.json" ;;
  *) echo "svag_jax: failed (exit code ${rc}); see ${WORKDIR}/status.json and attempts.jsonl" ;;
esac
exit "$rc"
