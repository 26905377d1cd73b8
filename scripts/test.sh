#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it
# needs, fetches the models, builds (plain and ASan+UBSan) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-deps.sh --test
scripts/setup-python.sh
.venv/bin/python scripts/fetch_model.py

make -j"$(nproc)"
make -j"$(nproc)" bench-bin
make -j"$(nproc)" SAN=1
make -j"$(nproc)" SAN=1 build/san/bench/bpe_tok   # the BPE tests' driver, sanitised

echo "== unit tests"
BGEICL_REQUIRE_MODELS=1 make unit
echo "== unit tests under ASan+UBSan"
BGEICL_REQUIRE_MODELS=1 ASAN_OPTIONS=detect_leaks=1 make SAN=1 unit

echo "== integration tests"
.venv/bin/python -m pytest tests/py -q -rP -p no:cacheprovider

echo "== integration tests under ASan+UBSan (smaller corpus)"
ASAN_OPTIONS=detect_leaks=1 BGEICL_BIN=build/san/bgeicl BGEICL_PARITY_LIMIT=150 \
    .venv/bin/python -m pytest tests/py -q -p no:cacheprovider -k "not fetch"
