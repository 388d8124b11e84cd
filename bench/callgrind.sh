#!/usr/bin/env bash
# bench/callgrind.sh: instructions per update of `okerr serve` on SQLite, counted by
# callgrind, which counts the same whatever else runs on the machine (docs/benchmarks.md,
# "Instructions per update"). The server runs under valgrind with collection off; after
# seeding 1,000 indicators and a 5 s warm-up, collection is switched on for a wrk run of
# 20 s (OK confirmations, 32 connections), then dumped. Prints the instructions per
# acknowledged update and the top functions (inclusive).
#
#   bash bench/callgrind.sh [--pipeline N] [--out DIR]
#   OKERR_BIN_DIR=/path/to/release bash bench/callgrind.sh   (binaries built elsewhere)
#
# Needs valgrind (Debian's package) and the release binaries (built here).
set -euo pipefail
PIPELINE=0
OUT=
while [[ $# -gt 0 ]]; do
    case $1 in
        --pipeline) PIPELINE=${2:?}; shift ;;
        --out) OUT=${2:?}; shift ;;
        *) echo "usage: bash bench/callgrind.sh [--pipeline N] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
cd "$(dirname "$0")/.."
ROOT=$PWD
for tool in valgrind callgrind_control callgrind_annotate wrk python3 curl; do
    command -v $tool > /dev/null || { echo "callgrind.sh needs $tool" >&2; exit 1; }
done
# OKERR_BIN_DIR: measure the binaries there (another tree's build), building nothing.
if [[ -n ${OKERR_BIN_DIR:-} ]]; then
    BIN=$OKERR_BIN_DIR
else
    cargo build --release -p okerr-bin -p okerr-bench >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/okerr-callgrind.XXXXXX")
OUT=${OUT:-$TMP}
mkdir -p "$OUT"
PID=
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2> /dev/null && wait "$PID" 2> /dev/null
    [[ $OUT == "$TMP" ]] || rm -rf "$TMP"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
    "$BIN/okerr" --database "sqlite://$TMP/okerr.db" serve --listen "127.0.0.1:$port" \
    --max-indicators 0 --autocreate-burst 0 --update-pipeline "$PIPELINE" \
    > "$TMP/okerr.out" 2> "$TMP/okerr.err" &
PID=$!
for _ in $(seq 600); do
    grep -q "^API key:" "$TMP/okerr.out" 2> /dev/null && break
    kill -0 "$PID" 2> /dev/null || { cat "$TMP/okerr.err" >&2; exit 1; }
    sleep 0.1
done
textid=$(sed -n 's/^TextID: *//p' "$TMP/okerr.out")
"$BIN/okerr-bench-seed" "127.0.0.1:$port" "$textid" 1000 16 >&2
url=http://127.0.0.1:$port/update
wrk -t2 -c32 -d5s -s bench/wrk/update.lua "$url" -- confirm 1000 "$textid" 2 > /dev/null
callgrind_control -i on "$PID" > /dev/null
wrk -t2 -c32 -d20s -s bench/wrk/update.lua "$url" -- confirm 1000 "$textid" 2 > "$TMP/wrk.txt"
callgrind_control -d "$PID" > /dev/null
callgrind_control -i off "$PID" > /dev/null
acked=$(sed -n 's/.*acked=\([0-9]*\).*/\1/p' "$TMP/wrk.txt")
dump=$(ls -t "$OUT"/callgrind.out* | head -1)
total=$(callgrind_annotate "$dump" 2> /dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "acknowledged updates: $acked"
echo "instructions: $total"
echo "instructions per update: $((total / acked))"
callgrind_annotate --inclusive=yes "$dump" 2> /dev/null | sed -n '/^Ir/,$p' | head -60
