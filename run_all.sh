#!/usr/bin/env bash
# Run every stage of the study, in order, for one profile and dataset.
#
#   PROFILE=cpu DATASET=cifar10 CIFAR_DIR=/path/to/folder ./run_all.sh
#
# PROFILE  smoke | cpu | full (default: full when CUDA is available, else cpu)
# DATASET  cifar100 (default) | cifar10
# CIFAR_DIR  folder holding cifar-100-python/ or cifar-10-batches-py/ (default ./data;
#            CIFAR-100 is downloaded there with torchvision when missing and online)
# A stage runs when its output is missing or older than a file it reads (results CSVs, checkpoints).
# FORCE=1  rerun every stage (cached checkpoints are still reused;
#          delete checkpoints/<dataset>-<profile>/ to retrain from scratch)
# PYTHON   interpreter to use (default: python, else python3)
# DEVICE   passed to every script as --device (default: each script's auto: cuda when available)
# JOBS     worker processes for independent trainings (baselines, students, seeds), passed as
#          --jobs (default: 2 per GPU on CUDA, 1 on a CPU); results do not depend on it
# KEEP_GOING=1  continue past a failed stage (exit status 1 at the end if any failed)
# LOG_DIR  also write each stage's output to LOG_DIR/<stage>.log
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-$(command -v python || command -v python3)}
DATASET=${DATASET:-cifar100}
PROFILE=${PROFILE:-$("$PYTHON" -c 'from common.profiles import default_profile_name; print(default_profile_name())')}
export CIFAR_DIR=${CIFAR_DIR:-data}
FORCE=${FORCE:-0}
KEEP_GOING=${KEEP_GOING:-0}
LOG_DIR=${LOG_DIR:-}
OUT=${RESULTS_DIR:-results}/$DATASET-$PROFILE
ARGS=(--profile "$PROFILE" --dataset "$DATASET" --data-dir "$CIFAR_DIR")
[[ -n ${DEVICE:-} ]] && ARGS+=(--device "$DEVICE")
[[ -n ${JOBS:-} ]] && ARGS+=(--jobs "$JOBS")
[[ -t 1 ]] || ARGS+=(--no-progress)   # progress bars only on a terminal; logs get epoch lines
[[ -n $LOG_DIR ]] && mkdir -p "$LOG_DIR"
FAILED=()

echo "[run_all] profile=$PROFILE dataset=$DATASET data=$CIFAR_DIR outputs=$OUT"
START=$SECONDS

CK=${CHECKPOINT_DIR:-checkpoints}/$DATASET-$PROFILE
R=$OUT    # results of this run

# run_stage NAME COMMAND... : run COMMAND (its output also to LOG_DIR/NAME.log), print one status
# line "[run_all] stage NAME ok|failed SECONDS", and stop at a failure unless KEEP_GOING=1.
run_stage() {
    local name=$1 t0=$SECONDS status=0
    shift
    if [[ -n $LOG_DIR ]]; then
        "$@" 2>&1 | tee "$LOG_DIR/${name//\//_}.log" || status=$?
    else
        "$@" || status=$?
    fi
    if [[ $status == 0 ]]; then
        echo "[run_all] stage $name ok $((SECONDS - t0))"
        return 0
    fi
    echo "[run_all] stage $name failed $((SECONDS - t0))"
    echo "[run_all] FAILED at stage '$name' (command: $*)" >&2
    [[ $KEEP_GOING == 1 ]] || exit 1
    FAILED+=("$name")
}

# stage NAME OUTPUT [INPUT ...] -- COMMAND... : run COMMAND when OUTPUT is missing, when an INPUT
# (a results file or checkpoint it reads) is newer than OUTPUT, or with FORCE=1.
stage() {
    local name=$1 output=$2 inputs=() why
    shift 2
    while [[ $1 != -- ]]; do inputs+=("$1"); shift; done
    shift
    if [[ "$FORCE" == 1 ]]; then
        why="FORCE=1"
    elif ! why=$("$PYTHON" -m common.stale "$output" "${inputs[@]}"); then
        echo "[run_all] skip $name: $output is up to date (FORCE=1 reruns it)"
        echo "[run_all] stage $name skipped 0"
        return 0
    fi
    echo "[run_all] === $name === ($why)"
    run_stage "$name" "$@"
}

VGG11=$CK/vgg11_seed0.pt
PRUNED=("$CK"/vgg11_unstructured70_seed0.pt "$CK"/vgg11_structured70_seed0.pt)

stage baselines "$R/baselines/baselines.csv" "$CK"/vgg11_seed0.pt "$CK"/vgg16_seed0.pt "$CK"/vgg19_seed0.pt -- \
    "$PYTHON" -m common.train "${ARGS[@]}" --model vgg11 vgg16 vgg19

# Pruning study (VGG-11): each script writes results/<dataset>-<profile>/pruning/<first output>.
P=$R/pruning
stage pruning/01_unstructured_sensitivity "$P/unstructured_sensitivity.csv" "$VGG11" -- \
    "$PYTHON" pruning/01_unstructured_sensitivity.py "${ARGS[@]}"
stage pruning/02_unstructured_final "$P/unstructured_final.csv" "$VGG11" "$P/unstructured_sensitivity.csv" -- \
    "$PYTHON" pruning/02_unstructured_final.py "${ARGS[@]}"
stage pruning/03_structured_sensitivity "$P/structured_sensitivity.csv" "$VGG11" -- \
    "$PYTHON" pruning/03_structured_sensitivity.py "${ARGS[@]}"
stage pruning/04_structured_final "$P/structured_final.csv" "$VGG11" "$P/structured_sensitivity.csv" -- \
    "$PYTHON" pruning/04_structured_final.py "${ARGS[@]}"
for step in 05_weight_histograms:weight_stats.csv 06_compare_models:pruned_models.csv \
            07_gradcam:gradcam_pruning.csv; do
    script=${step%%:*}
    stage "pruning/$script" "$P/${step#*:}" "$VGG11" "${PRUNED[@]}" -- "$PYTHON" "pruning/$script.py" "${ARGS[@]}"
done
stage pruning/08_accuracy_vs_sparsity "$P/accuracy_vs_sparsity.csv" "$VGG11" "$P/unstructured_sensitivity.csv" -- \
    "$PYTHON" pruning/08_accuracy_vs_sparsity.py "${ARGS[@]}"

# Quantization study (VGG-11; the scaling law also quantizes VGG-16/19 and the channel-pruned VGG-11).
for step in 01_ptq:ptq.csv 02_qat:qat.csv 03_scaling_law:scaling_law.csv \
            04_mixed_precision:mixed_precision.csv 05_outliers:outliers_per_layer.csv; do
    script=${step%%:*}
    extra=() inputs=("$VGG11")
    [[ $script == 03_scaling_law ]] && extra=(--with-pruned) \
        && inputs+=("$CK"/vgg16_seed0.pt "$CK"/vgg19_seed0.pt "$CK"/vgg11_structured70_seed0.pt)
    stage "quantization/$script" "$R/quantization/${step#*:}" "${inputs[@]}" -- \
        "$PYTHON" "quantization/$script.py" "${ARGS[@]}" "${extra[@]}"
done

# Distillation study (VGG-16 -> VGG-11; VGG-19 for the teacher-size comparison).
D=$R/distillation
seeds=()
# three seeds (mean and std) wherever the gains are meant to be read; smoke trains one
[[ $PROFILE != smoke ]] && seeds=(--seeds 0 1 2)
stage distillation/01_students "$D/students.csv" "$CK"/vgg16_seed0.pt -- \
    "$PYTHON" distillation/01_students.py "${ARGS[@]}" "${seeds[@]}"
for step in 02_alignment:alignment.csv 03_gradcam:gradcam_localization.csv \
            04_color_invariance:color_invariance.csv 05_teacher_size:teacher_size.csv; do
    script=${step%%:*}
    stage "distillation/$script" "$D/${step#*:}" "$D/students.csv" "$CK"/vgg16_seed0.pt "$CK"/vgg19_seed0.pt -- \
        "$PYTHON" "distillation/$script.py" "${ARGS[@]}"
done

# Synthesis: the techniques composed, every model on one accuracy/size/latency chart, the report.
stage combined/01_pipelines "$R/combined/pipelines.csv" "$VGG11" "${PRUNED[@]}" "$P/unstructured_sensitivity.csv" \
    "$D/students.csv" -- "$PYTHON" combined/01_pipelines.py "${ARGS[@]}"
stage combined/02_pareto "$R/combined/pareto_points.csv" "$R/baselines/baselines.csv" "$P/pruned_models.csv" \
    "$R/quantization/ptq.csv" "$R/quantization/mixed_precision.csv" "$D/students.csv" \
    "$R/combined/pipelines.csv" "$VGG11" "${PRUNED[@]}" -- "$PYTHON" combined/02_pareto.py "${ARGS[@]}"

# The report is rebuilt every time (seconds): tables and figures from the results above, the PDF
# where LaTeX is installed (otherwise it says how to install it and the run still succeeds).
echo "[run_all] === report ==="
run_stage report "$PYTHON" report/build.py --profile "$PROFILE" --dataset "$DATASET"

if (( ${#FAILED[@]} )); then
    echo "[run_all] ${#FAILED[@]} stage(s) failed: ${FAILED[*]}" >&2
    exit 1
fi
echo "[run_all] all stages done in $((SECONDS - START)) s; outputs in $OUT"
