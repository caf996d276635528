#!/bin/sh
# The device check of a `cargo xtask gpu-check --prepare` bundle: runs on the
# GPU machine (torch in its python3, no Rust, no network), or on the CPU to
# test the bundle. Writes OUT/report.json (medcap's checks and timings, with
# transformers' beside them), OUT/reference.json, OUT/trained.json
# (transformers loading a checkpoint medcap trained in bf16), OUT/info.txt,
# OUT/caption.txt and OUT/log.txt; exits non-zero when a check fails. The
# process-group check runs under python3's torchrun (NCCL on cuda, Gloo on
# cpu).
#
#   ./run.sh [--device cuda|cpu] [--out DIR] [--work DIR] [--quick] [--no-reference]
#
# --quick: the tiny fixture stands in for the base-size checkpoint, micro-
# batches stop at 8 and captioning uses 8 images (a test of the bundle).
# --no-reference: skip transformers (its checks are reported as skipped).
set -u
here=$(cd "$(dirname "$0")" && pwd)
device=cuda
out=$here/out
work=${TMPDIR:-/tmp}/medcap-gpu-check
quick=0
reference=1
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --no-reference) reference=0; shift ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out" "$work" || exit 1
log=$out/log.txt
: > "$log"
say() { echo "== $*" | tee -a "$log" >&2; }

python=${PYTHON:-python3}
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
    echo "run.sh: $python has no torch" >&2; exit 1; }
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "libtorch from $torch_lib"
"$here/bin/medcap-torch" info > "$out/info.txt" 2>> "$log" || { cat "$log" >&2; exit 1; }
cat "$out/info.txt" | tee -a "$log" >&2

fixtures=$here/fixtures
if [ "$quick" = 1 ]; then
    base=$fixtures/blip/tiny-caption
    sizes="--max-micro-batch 8 --caption-images 8"
else
    base=$work/blip-base
    sizes=""
fi

ref_args=""
if [ "$reference" = 1 ]; then
    # transformers 4.57.1, the version of every golden file, from the bundle's wheels
    # when python3 has another.
    if ! "$python" -c 'import sys, transformers; sys.exit(transformers.__version__ != "4.57.1")' 2>/dev/null; then
        say "installing the bundle's transformers 4.57.1 wheels into $work/site"
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$work/site" "$here"/wheels/*.whl >> "$log" 2>&1 || { echo "run.sh: pip failed (see $log)" >&2; exit 1; }
        export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    if [ "$quick" = 0 ] && [ ! -f "$base/model.safetensors" ]; then
        say "making a random blip-image-captioning-base-size checkpoint in $base"
        "$python" "$here/gpu_reference.py" make-base --fixtures "$fixtures/blip" "$base" >> "$log" 2>&1 || {
            echo "run.sh: make-base failed (see $log)" >&2; exit 1; }
    fi
    say "transformers on $device"
    # shellcheck disable=SC2086
    "$python" "$here/gpu_reference.py" measure --model "$base" --fixtures "$fixtures/blip" \
        --device "$device" --out "$out/reference.json" $sizes >> "$log" 2>&1 || {
        echo "run.sh: the transformers side failed (see $log)" >&2; exit 1; }
    ref_args="--reference $out/reference.json"
elif [ "$quick" = 0 ]; then
    echo "run.sh: --no-reference needs --quick (the base-size checkpoint is made by transformers)" >&2
    exit 2
fi

say "medcap caption on $device"
"$here/bin/medcap-torch" caption --device "$device" --model "$base" "$fixtures/blip/images/rgb_large.png" \
    > "$out/caption.txt" 2>> "$log" || { echo "run.sh: medcap caption failed (see $log)" >&2; exit 1; }

say "medcap-device-check on $device"
# shellcheck disable=SC2086
"$here/bin/medcap-device-check" run --device "$device" --fixtures "$fixtures" --base "$base" \
    --work "$work/runs" --out "$out/report.json" --torchrun "$python -m torch.distributed.run" \
    $ref_args $sizes 2>&1 | tee -a "$log" >&2
trained_ok=0
if [ "$reference" = 1 ]; then
    say "transformers loads the checkpoint medcap trained in bf16 on $device"
    "$python" "$here/gpu_reference.py" check-trained "$work/runs/runs/loss-device-bf16/checkpoints/latest" \
        --out "$out/trained.json" >> "$log" 2>&1 || trained_ok=1
fi
# POSIX sh has no pipefail: the report says whether every check passed.
if [ "$trained_ok" = 0 ] && "$python" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["passed"] else 1)' \
    "$out/report.json" 2>> "$log"; then
    say "every check passed; report: $out/report.json"
    exit 0
fi
say "a check failed or the run stopped; report: $out/report.json"
exit 1
