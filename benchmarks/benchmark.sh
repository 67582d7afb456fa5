#!/usr/bin/env bash
# The seed's benchmark.sh: one cold request (about 2 s), then one warm request (about instant).
# Usage: benchmarks/benchmark.sh [KEY] [BASE_URL]      (default: a fresh key, http://127.0.0.1:5000)
set -euo pipefail

KEY="${1:-testkey-$(date +%s)}"
URL="${2:-http://127.0.0.1:5000}/data/$KEY"
show() { if command -v jq >/dev/null; then jq .; else cat; echo; fi; }

echo "1) Cold cache request (about 2 s)..."
time curl -fsS "$URL" | show

echo
echo "2) Warm cache request (about instant)..."
time curl -fsS "$URL" | show
