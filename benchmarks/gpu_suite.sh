#!/usr/bin/env bash
# Every GPU check and benchmark of the training-speed work, on one CUDA GPU; prints one table.
#
#   bash benchmarks/gpu_suite.sh               # on the GPU machine, from the repository root (~10 min on an H200)
#   bash benchmarks/gpu_suite.sh --cpu-smoke   # every step, tiny, on CPU: shows that the script works (~5 min)
#   bash benchmarks/gpu_suite.sh --dry-run     # print the steps' commands, run nothing
#
# What it runs, most important first (each step under a time limit; the whole suite stops
# starting new steps when SUITE_BUDGET_S seconds, default 600, have passed — raise it to run all):
#   steps-eager       benchmarks/step_time.py, the four presets with the paper's models (ResNet-18
#                     student, DMWideResNet-28-10 teacher, batch 128, 10 attack steps), the recipes'
#                     defaults (bf16 autocast, channels-last, eager): ms/step, s/epoch, framework/plain ratio
#   steps-fast-*      the same, one preset per step, with every speed setting on: compile student +
#                     teacher in mode "reduce-overhead" (CUDA graphs), bf16 teacher, fused SGD,
#                     cudnn.benchmark (pgd_at and adaad+igdm first, the other two after the AutoAttack steps)
#   pytest-cuda       pytest -m cuda (compiled vs eager steps, bf16 teacher, no host syncs, ...)
#   igdm-adaad/rslad  benchmarks/igdm_overhead.py on the teacher-heavy bases (target: IGDM <= 1.05x)
#   aa-resnet18/wrn   benchmarks/autoattack_time.py: standard AutoAttack on 10,000 images (worst case)
#   steps-cheap       the presets with the settings that need no compilation (bf16 teacher, fused SGD,
#                     cudnn.benchmark)
#   steps-compile     pgd_at and adaad+igdm compiled without CUDA graphs (mode "default")
#   knob-*            one setting at a time on adaad+igdm / pgd_at
#   igdm-*-fast       IGDM's overhead with every speed setting on
#
# Offline: nothing is downloaded. Packages the GPU image lacks are installed from ./wheels/ when it
# exists; fill it on a machine with a package index, e.g.
#   pip download --no-deps pyautoattack -d wheels/
# (add any other package the image lacks: the suite names them and stops before running anything).
# Output: SUITE_OUT (default runs/gpu-suite-<date>-<time>/): status.tsv, <step>.json / <step>.log,
# env.log and summary.md (the table, also printed at the end); the compiled kernels are cached in
# <out>/inductor-cache unless TORCHINDUCTOR_CACHE_DIR is set.
set -uo pipefail

MODE=gpu
for arg in "$@"; do
    case "$arg" in
        --cpu-smoke) MODE=smoke ;;
        --dry-run) MODE=dry ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg (use --cpu-smoke, --dry-run or nothing)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
# the GPU image's Python by default (PYTHON=... to choose); the local .venv for the CPU smoke run
if [[ -z "${PYTHON:-}" ]]; then
    if [[ $MODE == smoke && -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT="${SUITE_OUT:-runs/gpu-suite-$(date +%Y%m%d-%H%M%S)}"
BUDGET="${SUITE_BUDGET_S:-600}"
if [[ $MODE != dry ]]; then
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    : > "$OUT/status.tsv"
    # the suite's own compilation cache: a step stopped at its time limit can leave a half-written
    # kernel library behind, which would break every later step that needs the same kernel
    export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$OUT/inductor-cache}"
fi
START=$SECONDS

# -- settings per mode ------------------------------------------------------------------------
FAST=(--set train.compile=true --set train.compile_teacher=true --set train.compile_mode=reduce-overhead
      --set train.teacher_bf16=true --set train.optimizer_impl=fused --set train.cudnn_benchmark=true)
CHEAP=(--set train.teacher_bf16=true --set train.optimizer_impl=fused --set train.cudnn_benchmark=true)
COMPILE=(--set train.compile=true --set train.compile_teacher=true)
# only the files with GPU tests: collecting the others would import their CPU-only references
mapfile -t CUDA_TESTS < <(grep -rlE "pytest\.mark\.cuda" tests examples --include="test_*.py" | sort)
if [[ $MODE == smoke ]]; then
    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    STEP=(--device cpu --scale small --attack-steps 1 --warmup 0 --steps 1 --rounds 1 --threads 1)
    FAST_PRESETS=(pgd_at)
    IGDM=(--preset cpu-small --attack-steps 1 --warmup 0 --steps 1 --rounds 1)
    AA_RN18=(--model small --device cpu --n 8 --fractions 0.01 0.02 --threads 1)
    AA_WRN=(--model small --device cpu --n 8 --fractions 0.01 0.02 --threads 1)
    PYTEST=(-m pytest -m cuda --collect-only -q -p no:cacheprovider "${CUDA_TESTS[@]}")
else
    STEP=(--device cuda --warmup 3 --steps 5 --rounds 3)
    FAST_PRESETS=(pgd_at adaad+igdm rslad+igdm adaad+igdm-no-tin)
    IGDM=(--preset gpu --warmup 3 --steps 5 --rounds 3)
    AA_RN18=(--model resnet18 --device cuda)
    AA_WRN=(--model wrn-28-10 --device cuda)
    PYTEST=(-m pytest -m cuda -q -p no:cacheprovider "${CUDA_TESTS[@]}")
fi

# -- one step: NAME TIME_LIMIT_S COMMAND... (stdout -> NAME.json, everything -> NAME.log) -------
run_step() {
    local name=$1 limit=$2
    shift 2
    if [[ $MODE == dry ]]; then
        printf '%-18s (limit %4ss) %s\n' "$name" "$limit" "$*"
        return
    fi
    local left=$((BUDGET - (SECONDS - START)))
    if ((left < 30)); then
        printf '%s\t-\t0\tskipped: SUITE_BUDGET_S=%s spent\n' "$name" "$BUDGET" >> "$OUT/status.tsv"
        echo "== $name: skipped (budget spent)"
        return
    fi
    ((limit > left)) && limit=$left
    echo "== $name (limit ${limit}s): $*"
    local t0=$SECONDS rc note=""
    timeout --signal=INT --kill-after=20 "$limit" "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
    rc=$?
    cat "$OUT/$name.json" >> "$OUT/$name.log"
    if ((rc == 124 || rc == 137)); then
        note="time limit reached"
        find "$TORCHINDUCTOR_CACHE_DIR" -name "*.so" -size 0 -delete 2> /dev/null
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" "$note" >> "$OUT/status.tsv"
    echo "   exit $rc after $((SECONDS - t0))s ${note}"
}

# -- environment: wheels, the project, the GPU ---------------------------------------------------
if [[ $MODE == gpu ]]; then
    if compgen -G "wheels/*.whl" > /dev/null; then
        "$PYTHON" -m pip install --quiet --no-index --no-deps wheels/*.whl || echo "warning: installing wheels/ failed"
    fi
    if ! "$PYTHON" -c "import advdistill_plugins" 2> /dev/null; then
        "$PYTHON" -m pip install --quiet --no-index --no-deps --no-build-isolation -e . -e examples/advdistill-example \
            || { echo "cannot install the project offline (setuptools missing?)" >&2; exit 1; }
    fi
    missing=$("$PYTHON" - <<'EOF'
import importlib.util
names = ["torch", "timm", "pluggy", "attrs", "click", "safetensors", "tqdm", "numpy", "pyautoattack", "pytest",
         "matplotlib"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
EOF
)
    if [[ -n $missing ]]; then
        echo "missing packages: $missing — on a machine with a package index run" >&2
        echo "  pip download --no-deps $missing -d wheels/   and copy wheels/ here" >&2
        exit 1
    fi
fi
if [[ $MODE != dry ]]; then
    "$PYTHON" - > "$OUT/env.log" <<'EOF'
import torch
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU smoke run)"
print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF
    echo "$(cat "$OUT/env.log"); results in $OUT"
    if [[ $MODE == gpu ]] && grep -q "no GPU" "$OUT/env.log"; then
        echo "no CUDA GPU visible; use --cpu-smoke on a machine without one" >&2
        exit 1
    fi
fi

# -- the steps, most important first -------------------------------------------------------------
ST=(benchmarks/step_time.py --json)
run_step steps-eager 180 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset all
# one process per preset, so that a preset that compiles too long does not cost the others' results
# (Inductor's on-disk cache makes the later ones compile faster)
run_step "steps-fast-${FAST_PRESETS[0]}" 180 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset "${FAST_PRESETS[0]}" "${FAST[@]}"
run_step "steps-fast-${FAST_PRESETS[1]:-adaad+igdm}" 180 "$PYTHON" "${ST[@]}" "${STEP[@]}" \
    --preset "${FAST_PRESETS[1]:-adaad+igdm}" "${FAST[@]}"
run_step pytest-cuda 240 "$PYTHON" "${PYTEST[@]}"
run_step igdm-adaad 90 "$PYTHON" benchmarks/igdm_overhead.py --json "${IGDM[@]}" --base adaad
run_step igdm-rslad 90 "$PYTHON" benchmarks/igdm_overhead.py --json "${IGDM[@]}" --base rslad
run_step aa-resnet18 120 "$PYTHON" benchmarks/autoattack_time.py --json "${AA_RN18[@]}"
run_step aa-wrn-28-10 240 "$PYTHON" benchmarks/autoattack_time.py --json "${AA_WRN[@]}"
for preset in "${FAST_PRESETS[@]:2}"; do
    run_step "steps-fast-$preset" 150 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset "$preset" "${FAST[@]}"
done
run_step steps-cheap 150 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset all "${CHEAP[@]}"
run_step steps-compile 240 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset pgd_at --preset adaad+igdm "${COMPILE[@]}"
run_step knob-teacher-bf16 90 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset adaad+igdm --set train.teacher_bf16=true
run_step knob-fused-sgd 60 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset pgd_at --set train.optimizer_impl=fused
run_step knob-cudnn-benchmark 60 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset pgd_at --set train.cudnn_benchmark=true
run_step knob-cuda-graphs 240 "$PYTHON" "${ST[@]}" "${STEP[@]}" --preset pgd_at --preset adaad+igdm \
    "${COMPILE[@]}" --set train.compile_mode=reduce-overhead
run_step igdm-adaad-fast 240 "$PYTHON" benchmarks/igdm_overhead.py --json "${IGDM[@]}" --base adaad "${FAST[@]}"
run_step igdm-rslad-fast 240 "$PYTHON" benchmarks/igdm_overhead.py --json "${IGDM[@]}" --base rslad "${FAST[@]}"

[[ $MODE == dry ]] && exit 0
echo "== done in $((SECONDS - START))s"
"$PYTHON" benchmarks/suite_table.py "$OUT" | tee "$OUT/summary.md"
