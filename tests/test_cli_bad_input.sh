#!/bin/sh
# test_cli_bad_input.sh - bad input to `visiond detect` (and `faces`, `verify`) never crashes it.
#
# usage: sh tests/test_cli_bad_input.sh path/to/visiond   (from the project root, as ctest runs it)
#
# Every case must end with exit status 1 or 2 (not 0, and not >= 128, which is a signal: a crash),
# with a message on stderr that names the problem (an extended regex, matched case-insensitively),
# and no sanitizer report. All inputs are generated in a temporary directory, removed at the end.
set -u

VISIOND=${1:?usage: sh tests/test_cli_bad_input.sh path/to/visiond}
SHARED=../shared
M=$SHARED/models/yolo-fastest-1.1
DOG=$SHARED/images/dog.jpg
PY=/usr/bin/python3

for f in "$VISIOND" "$M/yolo-fastest-1.1.cfg" "$M/yolo-fastest-1.1.weights" "$M/coco.names" "$DOG" "$PY"; do
    if [ ! -e "$f" ]; then
        echo "test_cli_bad_input: missing $f" >&2
        exit 1
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/visiond-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM

# Under the Asan build a sanitizer report must not pass for a clean exit 1: give it its own status.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:exitcode=87:print_stacktrace=1"
export ASAN_OPTIONS UBSAN_OPTIONS

CFG=$M/yolo-fastest-1.1.cfg
WEIGHTS=$M/yolo-fastest-1.1.weights
NAMES=$M/coco.names

# ---- inputs -----------------------------------------------------------------------------------

head -c 1000000 "$WEIGHTS" >"$T/truncated.weights"
: >"$T/empty.weights"
{ cat "$WEIGHTS"; printf 'abcd'; } >"$T/oversized.weights"
: >"$T/empty.cfg"
# The first [convolutional] becomes [foo]; the first filters= gets a word; a route points far ahead.
sed '0,/^\[convolutional\]/s//[foo]/' "$CFG" >"$T/unknown_section.cfg"
sed '0,/^filters=8$/s//filters=eight/' "$CFG" >"$T/bad_value.cfg"
sed '0,/^layers=-2$/s//layers=500/' "$CFG" >"$T/bad_route.cfg"
printf 'person\nbicycle\ncar\n' >"$T/three.names"

: >"$T/empty.png"
head -c 40000 "$DOG" >"$T/truncated.jpg"
head -c 2 "$DOG" >"$T/soi_only.jpg"
echo 'this is not an image' >"$T/text.jpg"
"$PY" - "$T" <<'EOF' || exit 1
import struct, sys, zlib

d = sys.argv[1]

def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

def png(width, height, idat):
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) + chunk(b'IEND', b'')

def write(name, data):
    with open(d + '/' + name, 'wb') as f:
        f.write(data)

rows = b''.join(b'\x00' + b'\x80' * (3 * 32) for _ in range(32))
good = png(32, 32, zlib.compress(rows))
write('good.png', good)
write('truncated.png', good[:len(good) // 2])
write('signature_only.png', good[:8])
# A valid header claiming 100000 x 100000 pixels (10^10) with a tiny IDAT.
write('huge.png', png(100000, 100000, zlib.compress(b'\x00' * 64)))
bad_crc = bytearray(good)
bad_crc[29] ^= 0xff  # IHDR's CRC (after 8 + 8 + 13 bytes): the data no longer matches it
write('bad_crc.png', bytes(bad_crc))
EOF

# ---- runner -----------------------------------------------------------------------------------

count=0
failed=0

report() { # NAME PROBLEM
    failed=$((failed + 1))
    echo "FAIL $1: $2"
    echo "    command: $CMD"
    sed -n '1,15s/^/    stderr: /p' "$T/stderr"
}

run() { # COMMAND... ; sets STATUS, CMD
    CMD=$*
    "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
    STATUS=$?
}

sanitizer_report() {
    grep -q -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/stderr"
}

# expect_fail NAME REGEX COMMAND...
expect_fail() {
    name=$1
    regex=$2
    shift 2
    count=$((count + 1))
    run "$@"
    if [ "$STATUS" -ge 128 ]; then
        report "$name" "killed by signal $((STATUS - 128)) (exit status $STATUS)"
    elif sanitizer_report; then
        report "$name" "sanitizer report (exit status $STATUS)"
    elif [ "$STATUS" -ne 1 ] && [ "$STATUS" -ne 2 ]; then
        report "$name" "exit status $STATUS, want 1 or 2"
    elif [ ! -s "$T/stderr" ]; then
        report "$name" "nothing on stderr"
    elif ! grep -q -i -E -e "$regex" "$T/stderr"; then
        report "$name" "stderr does not match /$regex/"
    else
        echo "ok   $name (exit $STATUS)"
    fi
}

# expect_ok NAME COMMAND... : a control, so that the failures above are the input's and not the setup's.
expect_ok() {
    name=$1
    shift
    count=$((count + 1))
    run "$@"
    if [ "$STATUS" -ne 0 ] || sanitizer_report; then
        report "$name" "exit status $STATUS, want 0"
    elif ! grep -q '"detections"' "$T/stdout"; then
        report "$name" "no detections array on stdout"
    else
        echo "ok   $name (exit 0)"
    fi
}

DETECT="$VISIOND detect --cfg $CFG --weights $WEIGHTS --names $NAMES"

# ---- cases ------------------------------------------------------------------------------------

expect_ok control_good_png $DETECT "$T/good.png"
expect_ok control_dog_jpg $DETECT "$DOG"

# Models.
expect_fail truncated_weights 'truncated\.weights: .*1000000 bytes .*needs 1384268.*truncated' \
    "$VISIOND" detect --cfg "$CFG" --weights "$T/truncated.weights" "$DOG"
expect_fail empty_weights 'empty\.weights: .*too short' \
    "$VISIOND" detect --cfg "$CFG" --weights "$T/empty.weights" "$DOG"
expect_fail oversized_weights 'oversized\.weights: .*wrong cfg' \
    "$VISIOND" detect --cfg "$CFG" --weights "$T/oversized.weights" "$DOG"
expect_fail missing_weights 'nope\.weights: .*(no such file|cannot open)' \
    "$VISIOND" detect --cfg "$CFG" --weights "$T/nope.weights" "$DOG"
expect_fail cfg_unknown_section 'unknown_section\.cfg:[0-9]+: unknown section \[foo\]' \
    "$VISIOND" detect --cfg "$T/unknown_section.cfg" --weights "$WEIGHTS" "$DOG"
expect_fail cfg_bad_value 'bad_value\.cfg:[0-9]+: filters=eight: not an integer' \
    "$VISIOND" detect --cfg "$T/bad_value.cfg" --weights "$WEIGHTS" "$DOG"
expect_fail cfg_route_to_nonexistent_layer 'bad_route\.cfg:[0-9]+: .*layer 500 does not exist' \
    "$VISIOND" detect --cfg "$T/bad_route.cfg" --weights "$WEIGHTS" "$DOG"
expect_fail cfg_empty 'empty\.cfg: .*no sections' \
    "$VISIOND" detect --cfg "$T/empty.cfg" --weights "$WEIGHTS" "$DOG"
expect_fail cfg_missing 'nope\.cfg: .*(no such file|cannot open)' \
    "$VISIOND" detect --cfg "$T/nope.cfg" --weights "$WEIGHTS" "$DOG"
expect_fail names_count_mismatch 'three\.names: .*3 names for a model with 80 classes' \
    "$VISIOND" detect --cfg "$CFG" --weights "$WEIGHTS" --names "$T/three.names" "$DOG"
expect_fail unknown_model_name "no-such-model.*not found" \
    "$VISIOND" detect --models-dir "$T" --model no-such-model "$DOG"
expect_fail model_name_with_path 'invalid model name' \
    "$VISIOND" detect --models-dir "$T" --model ../etc "$DOG"

# Images.
expect_fail zero_byte_image 'empty\.png: .*empty' $DETECT "$T/empty.png"
expect_fail truncated_png 'truncated\.png: .*(truncated|premature|unexpected end)' \
    $DETECT "$T/truncated.png"
expect_fail png_signature_only 'signature_only\.png: .*(truncated|missing|IHDR)' \
    $DETECT "$T/signature_only.png"
expect_fail png_bad_crc 'bad_crc\.png: .*crc' $DETECT "$T/bad_crc.png"
expect_fail png_100000x100000 'huge\.png: .*100000x100000.*limit' $DETECT "$T/huge.png"
expect_fail truncated_jpeg 'truncated\.jpg: .*(premature end|truncated)' $DETECT "$T/truncated.jpg"
expect_fail jpeg_soi_only 'soi_only\.jpg: .*JPEG' $DETECT "$T/soi_only.jpg"
expect_fail text_named_jpg 'text\.jpg: .*not an image in an accepted format' $DETECT "$T/text.jpg"
expect_fail missing_image 'missing\.jpg: .*no such file' $DETECT "$T/missing.jpg"
expect_fail directory_as_image "$(basename "$T"): .*not a regular file" $DETECT "$T"
# One bad image among good ones: the good ones are still reported, the exit status says one failed.
expect_fail bad_among_good 'text\.jpg: ' $DETECT "$T/good.png" "$T/text.jpg" "$DOG"
if [ "$(grep -c '"detections"' "$T/stdout")" -ne 2 ]; then
    report bad_among_good_stdout "want the 2 good images' results on stdout"
fi

# Options.
expect_fail unknown_class '--classes: unknown class "unicorn"' $DETECT --classes person,unicorn "$DOG"
expect_fail conf_above_one '--conf: expected a number between 0 and 1, got "2"' $DETECT --conf 2 "$DOG"
expect_fail conf_negative '--conf: expected a number between 0 and 1, got "-0.5"' $DETECT --conf -0.5 "$DOG"
expect_fail conf_not_a_number '--conf: expected a number between 0 and 1, got "abc"' $DETECT --conf abc "$DOG"
expect_fail conf_nan '--conf: expected a number between 0 and 1, got "nan"' $DETECT --conf nan "$DOG"
expect_fail conf_trailing_junk '--conf: expected a number between 0 and 1, got "0.5x"' $DETECT --conf 0.5x "$DOG"
expect_fail iou_above_one '--iou: expected a number between 0 and 1, got "1.5"' $DETECT --iou 1.5 "$DOG"
expect_fail max_det_zero '--max-det: expected an integer between 1 and 1000, got "0"' $DETECT --max-det 0 "$DOG"
expect_fail max_det_over_http_bound '--max-det: expected an integer between 1 and 1000, got "1001"' \
    $DETECT --max-det 1001 "$DOG"
expect_fail size_too_small "invalid value '7x7'" $DETECT --size 7x7 "$DOG"
expect_fail cfg_without_weights 'needs --weights' "$VISIOND" detect --cfg "$CFG" "$DOG"
expect_fail no_image 'needs at least one IMAGE' $DETECT
expect_fail unknown_option 'invalid option|unrecognized' $DETECT --frobnicate "$DOG"

# Faces (`visiond faces`, `visiond verify`, `visiond bench --faces`), when the face models are installed.
FACE_PHOTO=models/faces/package/demo/sample2.jpg
if [ -f models/faces/face_recognition_model-weights_manifest.json ] && [ -f "$FACE_PHOTO" ]; then
    FACES="$VISIOND faces --models-dir models"
    VERIFY="$VISIOND verify --models-dir models"
    count=$((count + 1))
    run $FACES "$FACE_PHOTO" "$DOG"
    if [ "$STATUS" -ne 0 ] || sanitizer_report || [ "$(grep -c '"faces"' "$T/stdout")" -ne 2 ]; then
        report control_faces "exit status $STATUS, want 0 and two answers"
    else
        echo "ok   control_faces (exit 0)"
    fi
    mkdir -p "$T/fm/faces"
    cp models/faces/*.json models/faces/*.bin "$T/fm/faces/"
    printf '[{"paths": [' >"$T/fm/faces/face_landmark_68_model-weights_manifest.json"
    expect_fail faces_truncated_jpeg 'truncated\.jpg: image: .*(premature end|truncated)' $FACES "$T/truncated.jpg"
    expect_fail faces_missing_image 'missing\.jpg: image: .*no such file' $FACES "$T/missing.jpg"
    expect_fail faces_bad_among_good 'text\.jpg: image: .*not an image in an accepted format' $FACES "$FACE_PHOTO" "$T/text.jpg" "$DOG"
    if [ "$(grep -c '"faces"' "$T/stdout")" -ne 2 ] || [ "$(grep -c '"error"' "$T/stdout")" -ne 1 ]; then
        report faces_bad_among_good_stdout "want 2 answers and 1 error line on stdout"
    fi
    expect_fail faces_det_threshold_above_one '--det-threshold: expected a number between 0 and 1' \
        $FACES --det-threshold 2 "$FACE_PHOTO"
    expect_fail faces_input_size_not_multiple_of_32 '--input-size: expected a multiple of 32' \
        $FACES --input-size 100 "$FACE_PHOTO"
    expect_fail faces_limit_negative '--limit: expected an integer' $FACES --limit -1 "$FACE_PHOTO"
    expect_fail faces_no_models 'no face models in .*faces' "$VISIOND" faces --models-dir "$T" "$FACE_PHOTO"
    expect_fail faces_corrupt_manifest 'face_landmark_68_model-weights_manifest\.json.*malformed' \
        "$VISIOND" faces --models-dir "$T/fm" "$FACE_PHOTO"
    expect_fail faces_draw_several_needs_directory 'needs an existing directory' \
        $FACES --draw "$T/out.png" "$FACE_PHOTO" "$DOG"
    expect_fail faces_no_image 'needs at least one IMAGE' $FACES
    expect_fail verify_one_image 'needs two images' $VERIFY "$FACE_PHOTO"
    expect_fail verify_no_face_in_image2 'dog\.jpg: image2: no face found' $VERIFY "$FACE_PHOTO" "$DOG"
    if ! grep -q '"code":"NO_FACE"' "$T/stdout"; then
        report verify_no_face_stdout "want a NO_FACE JSON line on stdout"
    fi
    expect_fail verify_truncated_image1 'truncated\.jpg: image1: ' $VERIFY "$T/truncated.jpg" "$FACE_PHOTO"
    expect_fail verify_face_select_unknown '--face-select: expected "largest" or "best"' \
        $VERIFY --face-select worst "$FACE_PHOTO" "$FACE_PHOTO"
    expect_fail verify_match_threshold_negative '--match-threshold: expected a Euclidean distance' \
        $VERIFY --match-threshold -1 "$FACE_PHOTO" "$FACE_PHOTO"
    expect_fail bench_faces_without_image 'needs --image' "$VISIOND" bench --faces --models-dir models
else
    echo "skip faces: no face models in models/faces (scripts/fetch-models)"
fi

echo "$((count - failed)) of $count cases passed"
[ "$failed" -eq 0 ]
