#!/usr/bin/env bash
# Create/refresh the Python tooling environment in .venv/ (git-ignored).
#
#   scripts/setup-python.sh               everything the Python tests need
#   scripts/setup-python.sh --fetch-only  just what scripts/fetch_model.py needs
#                                         (no torch; used by scripts/run.sh)
#
# The venv is built on Debian's interpreter with --system-site-packages so
# that Debian's CPU build of torch (python3-torch, installed by
# scripts/setup-deps.sh --test) is used: a PyPI torch wheel would be a
# multi-GB download and would drag in CUDA libraries we never use.
#
# Idempotent: pip only runs when scripts/requirements-test.txt changed since
# the last successful install of at least the requested scope (sha256 and
# scope kept in .venv/.req-stamp). The import and encode smoke checks always
# run; they take a few seconds.
set -euo pipefail

cd "$(dirname "$0")/.."

PY=/usr/bin/python3
VENV=.venv
REQ=scripts/requirements-test.txt
STAMP="$VENV/.req-stamp"
# fetch_model.py's needs, taken (with their pins) from $REQ so there is one
# list of versions. huggingface-hub is optional for it but makes the Hub
# attempt behave as in the full environment.
FETCH_PKGS='numpy|onnx|safetensors|huggingface-hub'

log() { printf '[setup-python] %s\n' "$*"; }
die() { printf '[setup-python] ERROR: %s\n' "$*" >&2; exit 1; }

scope=full
case "${1:-}" in
    "") ;;
    --fetch-only) scope=fetch ;;
    *) die "usage: $0 [--fetch-only]" ;;
esac

[ -x "$PY" ] || die "$PY not found; run scripts/setup-deps.sh first"
"$PY" -c 'import ensurepip' 2>/dev/null \
    || die "python3-venv is missing; run scripts/setup-deps.sh first"
# Without Debian's torch visible, pip would resolve sentence-transformers'
# torch requirement from PyPI instead; refuse early rather than do that.
if [ "$scope" = full ]; then
    "$PY" -c 'import torch' 2>/dev/null \
        || die "Debian python3-torch is not importable by $PY; run scripts/setup-deps.sh --test first"
fi

# Recreate the venv if it is missing, broken, or was not made the way we need
# (another interpreter, or without access to the system site-packages).
venv_ok() {
    [ -x "$VENV/bin/python" ] || return 1
    [ -f "$VENV/pyvenv.cfg" ] || return 1
    grep -Eq '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" || return 1
    grep -Eq '^home *= */usr/bin$' "$VENV/pyvenv.cfg" || return 1
    "$VENV/bin/python" -c 'import sys' 2>/dev/null || return 1
}
if ! venv_ok; then
    log "creating $VENV (system site-packages visible)"
    rm -rf "$VENV"
    "$PY" -m venv --system-site-packages "$VENV"
fi

# The stamp is "<sha256 of $REQ> <scope>"; a full install also satisfies --fetch-only.
want=$(sha256sum "$REQ" | cut -d' ' -f1)
have_sha= have_scope=
[ -f "$STAMP" ] && read -r have_sha have_scope < "$STAMP" || true
if [ "$want" = "$have_sha" ] && { [ "$have_scope" = full ] || [ "$scope" = fetch ]; }; then
    log "requirements unchanged (stamp ${want:0:12}, $have_scope); skipping pip"
else
    rm -f "$STAMP"
    pip_install() {
        "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "$@"
    }
    if [ "$scope" = full ]; then
        log "installing $REQ"
        pip_install -r "$REQ"
    else
        mapfile -t pins < <(grep -E "^($FETCH_PKGS)==" "$REQ")
        [ ${#pins[@]} -eq 4 ] || die "expected pins for $FETCH_PKGS in $REQ, found: ${pins[*]}"
        log "installing ${pins[*]}"
        pip_install "${pins[@]}"
    fi
    # Written only after a successful install, so a failed or interrupted
    # run is retried next time.
    echo "$want $scope" > "$STAMP"
fi

log "checking the environment"
if [ "$scope" = fetch ]; then
    "$VENV/bin/python" - <<'EOF'
import numpy, onnx, safetensors, huggingface_hub
if int(numpy.__version__.split(".")[0]) >= 2:
    raise SystemExit(f"numpy {numpy.__version__} is >= 2; Debian's torch needs numpy 1.x")
print(f"  numpy {numpy.__version__}, onnx {onnx.__version__}, "
      f"safetensors {safetensors.__version__}, huggingface_hub {huggingface_hub.__version__}")
EOF
    log "done (fetch-only): use $VENV/bin/python scripts/fetch_model.py"
    exit 0
fi
"$VENV/bin/python" - <<'EOF'
import os, sys, tempfile

import numpy
import torch
import tokenizers
import transformers
import sentence_transformers
import onnx
import onnxruntime
import safetensors
import pytest
import openai

# A torch inside the venv would mean pip replaced Debian's build.
if not torch.__file__.startswith("/usr/lib/python3/"):
    sys.exit(f"torch was loaded from {torch.__file__}, not Debian's python3-torch")
if int(numpy.__version__.split(".")[0]) >= 2:
    sys.exit(f"numpy {numpy.__version__} is >= 2; Debian's torch needs numpy 1.x")

# transformers silently disables its torch backend when it considers the
# installed torch too old; catch that here rather than in a confusing test.
from transformers.utils import is_torch_available
if not is_torch_available():
    sys.exit(f"transformers {transformers.__version__} does not accept torch {torch.__version__}")

# Prove sentence-transformers can really encode, without needing network or
# the fetched models: a tiny randomly initialised BERT with a toy vocab.
from transformers import BertConfig, BertModel, BertTokenizerFast
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

with tempfile.TemporaryDirectory() as d:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "test"]
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    BertTokenizerFast(os.path.join(d, "vocab.txt")).save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64)
    BertModel(cfg).save_pretrained(d)  # safetensors by default
    word = Transformer(d, max_seq_length=32)
    st = SentenceTransformer(modules=[word, Pooling(32, "cls"), Normalize()],
                             device="cpu")
    emb = st.encode(["hello world", "test"], convert_to_numpy=True)
    assert emb.shape == (2, 32), emb.shape
    assert abs(float((emb[0] ** 2).sum()) - 1.0) < 1e-5

print(f"  python {sys.version.split()[0]}, torch {torch.__version__} (Debian), "
      f"numpy {numpy.__version__}")
print(f"  transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
      f"sentence-transformers {sentence_transformers.__version__}")
print(f"  onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
      f"safetensors {safetensors.__version__}, pytest {pytest.__version__}, "
      f"openai {openai.__version__}")
print("  sentence-transformers encode smoke test: ok")
EOF
log "done: use $VENV/bin/python"
