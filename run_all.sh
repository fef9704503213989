#!/usr/bin/env bash
# Run the study: every stage of study/stages.py that is not up to date, then the report.
#
#   PROFILE=cpu DATASET=cifar10 CIFAR_DIR=/path/to/folder ./run_all.sh
#   ./run_all.sh distillation                 # one task (and the stages it needs first)
#   ./run_all.sh --launcher slurm --partition gpu --time-minutes 240 --gpus-per-job 1
#
# PROFILE    smoke | cpu | full (default: full when CUDA is available, else cpu)
# DATASET    cifar100 (default) | cifar10
# CIFAR_DIR  folder holding cifar-100-python/ or cifar-10-batches-py/ (default ./data;
#            CIFAR-100 is downloaded there with torchvision when missing and online)
# A stage runs when an output or its completion record (results/<dataset>-<profile>/stages/) is
# missing or not what it wrote, or when its command, its work under the profile, the data, its
# code (its script and the project modules it imports), a results file it read or a checkpoint it
# used changed; timestamps decide nothing. A named stage first gets the stale stages it reads from.
# FORCE=1    rerun the stages named (every stage when none is), not their up-to-date inputs
#            (cached checkpoints are still reused when their key matches)
# FORCE_RETRAIN=1  rerun every stage selected (inputs too), and retrain the cached models
#            trained by other code than today's
#            (otherwise reused, saying so)
# PYTHON     interpreter (default: python, else python3); every stage runs with it
# DEVICE     passed to every script as --device (default: each script's auto: cuda when available)
# JOBS       worker processes for independent trainings, passed as --jobs
#            (default: 2 per GPU on CUDA, 1 on a CPU)
# KEEP_GOING=1  continue past a failed stage (exit status 1 at the end if any failed)
# VERBOSE=1  show each stage's output live (it always goes to its log)
# LOG_DIR    folder of each stage's output, LOG_DIR/<stage>.log (default logs/<dataset>-<profile>/)
# Each variable is checked as its flag is (./run_all.sh --help): a bad value is one line, nothing runs.
# The runner is python -m study.runner; --help lists its flags.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
exec "$PYTHON" -m study.runner "$@"
