#!/usr/bin/env bash
# Run every stage of the study, in order, for one profile and dataset.
#
#   PROFILE=cpu DATASET=cifar10 CIFAR_DIR=../shared/data ./run_all.sh
#
# PROFILE  smoke | cpu | full (default: full when CUDA is available, else cpu)
# DATASET  cifar100 (default) | cifar10
# CIFAR_DIR  folder holding cifar-100-python/ or cifar-10-batches-py/ (default ./data;
#            CIFAR-100 is downloaded there with torchvision when missing and online)
# FORCE=1  rerun stages whose outputs already exist (cached checkpoints are still reused;
#          delete checkpoints/<dataset>-<profile>/ to retrain from scratch)
# PYTHON   interpreter to use (default: python, else python3)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-$(command -v python || command -v python3)}
DATASET=${DATASET:-cifar100}
PROFILE=${PROFILE:-$("$PYTHON" -c 'from common.profiles import default_profile_name; print(default_profile_name())')}
export CIFAR_DIR=${CIFAR_DIR:-data}
FORCE=${FORCE:-0}
OUT=${RESULTS_DIR:-results}/$DATASET-$PROFILE
ARGS=(--profile "$PROFILE" --dataset "$DATASET" --data-dir "$CIFAR_DIR")
[[ -t 1 ]] || ARGS+=(--no-progress)   # progress bars only on a terminal; logs get epoch lines

echo "[run_all] profile=$PROFILE dataset=$DATASET data=$CIFAR_DIR outputs=$OUT"
START=$SECONDS

# stage NAME OUTPUT COMMAND... : run COMMAND unless OUTPUT exists (or FORCE=1); stop on failure.
stage() {
    local name=$1 output=$2
    shift 2
    if [[ "$FORCE" != 1 && -e "$output" ]]; then
        echo "[run_all] skip $name: $output exists (FORCE=1 reruns it)"
        return 0
    fi
    echo "[run_all] === $name ==="
    local t0=$SECONDS
    if ! "$@"; then
        echo "[run_all] FAILED at stage '$name' (command: $*)" >&2
        exit 1
    fi
    echo "[run_all] $name done in $((SECONDS - t0)) s"
}

stage baselines "$OUT/baselines/baselines.csv" \
    "$PYTHON" -m common.train "${ARGS[@]}" --model vgg11 vgg16 vgg19

# Pruning study (VGG-11): each script writes results/<dataset>-<profile>/pruning/<first output>.
for step in 01_unstructured_sensitivity:unstructured_sensitivity.csv \
            02_unstructured_final:unstructured_final.csv \
            03_structured_sensitivity:structured_sensitivity.csv \
            04_structured_final:structured_final.csv \
            05_weight_histograms:weight_stats.csv \
            06_compare_models:pruned_models.csv \
            07_gradcam:gradcam_pruning.csv \
            08_accuracy_vs_sparsity:accuracy_vs_sparsity.csv; do
    script=${step%%:*}
    stage "pruning/$script" "$OUT/pruning/${step#*:}" "$PYTHON" "pruning/$script.py" "${ARGS[@]}"
done

# Quantization study (VGG-11; the scaling law also quantizes VGG-16/19 and the channel-pruned VGG-11).
for step in 01_ptq:ptq.csv 02_qat:qat.csv 03_scaling_law:scaling_law.csv \
            04_mixed_precision:mixed_precision.csv 05_outliers:outliers_per_layer.csv; do
    script=${step%%:*}
    extra=()
    [[ $script == 03_scaling_law ]] && extra=(--with-pruned)
    stage "quantization/$script" "$OUT/quantization/${step#*:}" \
        "$PYTHON" "quantization/$script.py" "${ARGS[@]}" "${extra[@]}"
done

# Distillation study (VGG-16 -> VGG-11; VGG-19 for the teacher-size comparison).
for step in 01_students:students.csv 02_alignment:alignment.csv 03_gradcam:gradcam_localization.csv \
            04_color_invariance:color_invariance.csv 05_teacher_size:teacher_size.csv; do
    script=${step%%:*}
    extra=()
    # three seeds (mean and std) wherever the gains are meant to be read; smoke trains one
    [[ $script == 01_students && $PROFILE != smoke ]] && extra=(--seeds 0 1 2)
    stage "distillation/$script" "$OUT/distillation/${step#*:}" \
        "$PYTHON" "distillation/$script.py" "${ARGS[@]}" "${extra[@]}"
done

# Synthesis: the techniques composed, every model on one accuracy/size/latency chart, the report.
stage combined/01_pipelines "$OUT/combined/pipelines.csv" "$PYTHON" combined/01_pipelines.py "${ARGS[@]}"
stage combined/02_pareto "$OUT/combined/pareto_points.csv" "$PYTHON" combined/02_pareto.py "${ARGS[@]}"

# The report is rebuilt every time (seconds): tables and figures from the results above, the PDF
# where LaTeX is installed (otherwise it says how to install it and the run still succeeds).
echo "[run_all] === report ==="
if ! "$PYTHON" report/build.py --profile "$PROFILE" --dataset "$DATASET"; then
    echo "[run_all] FAILED at stage 'report': see the problems listed above" >&2
    exit 1
fi

echo "[run_all] all stages done in $((SECONDS - START)) s; outputs in $OUT"
