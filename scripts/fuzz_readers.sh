#!/bin/sh
# Feeds many damaged copies of valid files (safetensors, IDX raw and gzip, CoNLL, GloVe) to the
# readers in a release build; a reader that traps instead of throwing crashes the run.
# Usage: scripts/fuzz_readers.sh [iterations per format, default 20000] [seed, default: time]
set -eu
cd "$(dirname "$0")/.."
iterations="${1:-20000}"
seed="${2:-$(date +%s)}"
echo "fuzzing readers: $iterations damaged files per format, seed $seed"
KILN_FUZZ_ITERATIONS="$iterations" KILN_FUZZ_SEED="$seed" \
    swift test -c release --scratch-path .build-data --filter ReaderFuzzTests
