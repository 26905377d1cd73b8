#!/usr/bin/env bash
# Installs the Debian packages bgeicl needs. Idempotent: apt is only asked
# when a package is missing.
#   scripts/setup-deps.sh          build and run dependencies
#   scripts/setup-deps.sh --test   plus what the test suite and benchmarks use
set -euo pipefail

pkgs=(build-essential pkg-config libopenblas-dev libutf8proc-dev libcjson-dev
      libmicrohttpd-dev zlib1g-dev libssl-dev libcurl4-openssl-dev
      python3 python3-venv python3-pip ca-certificates curl)
if [ "${1:-}" = "--test" ]; then
    # python3-torch is Debian's CPU build: the reference sentence-transformers
    # runs on it without the multi-GB CUDA wheels that PyPI's torch pulls in.
    # prometheus provides promtool, which checks deploy/prometheus/, and the
    # server that the scrape test runs; wrk drives the server's load test.
    pkgs+=(python3-torch prometheus wrk)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "setup-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
