#!/usr/bin/env bash
# Quick start: installs the dependencies, builds, fetches the default model
# and embeds a sample. Arguments, if any, are texts to embed instead.
set -euo pipefail
cd "$(dirname "$0")/.."

# Setup talks on stderr so that stdout carries only the embeddings.
scripts/setup-deps.sh >&2
scripts/setup-python.sh --fetch-only >&2
.venv/bin/python scripts/fetch_model.py bge-small-en-v1.5 >&2
make -j"$(nproc)" >/dev/null

if [ $# -eq 0 ]; then
    set -- "def read_config(path): return json.load(open(path))" \
           "How do I read a JSON config file?"
fi
exec build/bgeicl embed --model models/bge-small-en-v1.5 "$@"
