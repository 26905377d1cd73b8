#!/usr/bin/env bash
# The serve command: installs the dependencies, builds, fetches the default
# model and starts `bgeicl serve` on port 8080 (PORT or --port to change it).
# Arguments are passed to `bgeicl serve`, for example:
#   scripts/run.sh --port 9000 --api-key secret
set -euo pipefail
cd "$(dirname "$0")/.."

# Setup talks on stderr, like the server's log.
scripts/setup-deps.sh >&2
scripts/setup-python.sh --fetch-only >&2
.venv/bin/python scripts/fetch_model.py bge-small-en-v1.5 >&2
make -j"$(nproc)" >/dev/null

exec build/bgeicl serve "$@"
