#!/usr/bin/env bash
# Install the peers of the peer benchmark and convert the model for them.
#
#   bench/peers/setup.sh
#
# Creates .venv-peers/ (git-ignored; separate from the tests' .venv/) on
# Debian's python3 with --system-site-packages, so that Debian's CPU torch
# (python3-torch) serves sentence-transformers as in the tests, and installs
# scripts/requirements-test.txt plus bench/peers/requirements.txt.
# llama-cpp-python is built from source (needs Debian's cmake and a C++
# compiler); CMAKE_ARGS may be set by the caller, otherwise a CPU build for
# this machine's vector instruction set (see below).
#
# Then writes, under .cache/peers/ (git-ignored), everything derived from
# models/bge-small-en-v1.5 (run scripts/fetch_model.py first):
#   bge-small-en-v1.5.onnx      the fp32 ONNX graph the model folder was
#                               converted from (taken out of the cached Maven
#                               jar that scripts/fetch_model.py recorded in
#                               SOURCE.json), or, where the model came from
#                               the Hub, a torch.onnx export of the weights
#   bge-small-en-v1.5-f16.gguf  llama.cpp's converter (from the llama-cpp-python
#                               sdist, through bench/peers/gguf_convert.py for
#                               Debian's torch), --outtype f16
#   bge-small-en-v1.5-q8_0.gguf the same, --outtype q8_0
#   fte/model.fte, fte/vocab.tsv  fasttextembed's format, written by
#                               bench/peers/convert_fte.py from model.safetensors
# Idempotent: each step is skipped when its output exists.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=/usr/bin/python3
VENV=.venv-peers
CACHE=.cache/peers
MODEL=models/bge-small-en-v1.5
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==//p' bench/peers/requirements.txt)

log() { printf '[peers-setup] %s\n' "$*"; }
die() { printf '[peers-setup] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f "$MODEL/model.safetensors" ] || die "$MODEL missing; run scripts/fetch_model.py"
command -v cmake >/dev/null || die "cmake missing (apt-get install cmake)"
command -v c++ >/dev/null || die "a C++ compiler is missing (apt-get install build-essential)"
mkdir -p "$CACHE"

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PY" -m venv --system-site-packages "$VENV"
fi
VPY="$VENV/bin/python"

# The sdist is kept: it is both what pip builds and where the converter lives.
SDIST="$CACHE/llama_cpp_python-$LLAMA_VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
    log "downloading the llama-cpp-python $LLAMA_VERSION sdist"
    "$VPY" -m pip download --no-deps -d "$CACHE" \
        "llama-cpp-python==$LLAMA_VERSION"
fi
SRC="$CACHE/llama_cpp_python-$LLAMA_VERSION"
[ -d "$SRC" ] || tar -xzf "$SDIST" -C "$CACHE"

# llama.cpp for this CPU's vector ISA (AVX-512 with VNNI and BF16 where
# present, else AVX2) but without its AMX int8 kernels: in llama-cpp-python
# 0.3.36 they stop the process with SIGILL (tilezero) on q8_0 embeddings, on
# Sapphire Rapids, even with the tile permission granted. Flags instead of
# GGML_NATIVE, because -march=native would switch AMX back on. LLAVA_BUILD=OFF:
# the multimodal library (imported only by chat handlers) is not needed.
if [ -z "${CMAKE_ARGS:-}" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    has() { case " $flags " in *" $1 "*) echo ON ;; *) echo OFF ;; esac; }
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF"
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma)"
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_F16C=$(has f16c) -DGGML_BMI2=$(has bmi2)"
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX_VNNI=$(has avx_vnni) -DGGML_AVX512=$(has avx512f)"
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512_VBMI=$(has avx512vbmi)"
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512_VNNI=$(has avx512_vnni)"
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512_BF16=$(has avx512_bf16)"
    CMAKE_ARGS="$CMAKE_ARGS -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
fi
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"

STAMP="$VENV/.req-stamp"
want=$( (cat scripts/requirements-test.txt bench/peers/requirements.txt; echo "$CMAKE_ARGS") |
        sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    log "installing peers (llama.cpp builds from source: several minutes)"
    log "CMAKE_ARGS=$CMAKE_ARGS"
    grep -v '^llama-cpp-python==' bench/peers/requirements.txt > "$CACHE/requirements-nollama.txt"
    "$VPY" -m pip install -r scripts/requirements-test.txt -r "$CACHE/requirements-nollama.txt"
    # llama-cpp-python's own run-time dependencies
    "$VPY" -m pip install 'diskcache>=5.6.1' 'jinja2>=2.11.3' 'typing-extensions>=4.5.0'
    "$VPY" -m pip install --no-deps --force-reinstall --no-cache-dir "$SDIST"
    echo "$want" > "$STAMP"
fi
"$VPY" -c 'import llama_cpp, onnxruntime, fasttextembed, sentence_transformers' \
    || die "a peer does not import"

# ---- weights ---------------------------------------------------------------
ONNX="$CACHE/bge-small-en-v1.5.onnx"
if [ ! -f "$ONNX" ]; then
    JAR=$("$VPY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("cache_file",""))' \
          "$MODEL/SOURCE.json")
    if [ -n "$JAR" ] && [ -f "$JAR" ]; then
        log "ONNX: the original graph from $JAR"
        "$VPY" - "$JAR" "$ONNX" <<'PYEOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith(".onnx"))
    open(sys.argv[2] + ".part", "wb").write(z.read(name))
PYEOF
        mv "$ONNX.part" "$ONNX"
    else
        log "ONNX: exporting the model folder with torch.onnx"
        "$VPY" bench/peers/export_onnx.py "$MODEL" "$ONNX"
    fi
fi

CONVERT="$SRC/vendor/llama.cpp/convert_hf_to_gguf.py"
for t in f16 q8_0; do
    out="$CACHE/bge-small-en-v1.5-$t.gguf"
    [ -f "$out" ] && continue
    log "GGUF $t"
    PYTHONPATH="$SRC/vendor/llama.cpp/gguf-py" "$VPY" bench/peers/gguf_convert.py "$CONVERT" "$MODEL" \
        --outtype "$t" --outfile "$out.part"
    mv "$out.part" "$out"
done

if [ ! -f "$CACHE/fte/model.fte" ]; then
    log "fasttextembed weights"
    "$VPY" bench/peers/convert_fte.py "$MODEL" "$CACHE/fte"
fi
log "done: $VENV, $CACHE"
