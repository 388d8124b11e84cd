#!/usr/bin/env bash
# bench/http.sh: okerr's real HTTP update path (POST /update, okerrupdate's form) under wrk,
# against a ceiling (okerr-ceiling: the same axum and runtime, no engine, no storage), in
# the same run, interleaved. See docs/benchmarks.md, "The HTTP benchmark".
#
#   bash bench/http.sh [--quick] [--backend sqlite|postgres|all] [--mode confirm|flip|all]
#                      [--connections "32 256"] [--duration SECONDS] [--runs N]
#
# OKERR_BIN_DIR=DIR takes okerr, okerr-ceiling and okerr-bench-seed from DIR instead of
# building them (to compare two builds side by side).
#
# Matrix: backend x indicators {1,000, 100,000} x mode {confirm, flip} x connections
# {32, 256}; --quick: 1 run of 5 s, 1,000 indicators only. Each configuration is measured
# --runs times (default 3), ceiling then okerr; the table gives medians and the spread.
# After each okerr run the log rows written by the load are compared with the answers
# 200 "OK" that wrk got: OK, or LOST.
#
# The Markdown table goes to stdout, progress to stderr. PostgreSQL: postgres@127.0.0.1:5432
# (psql without a password), database okerr_bench, dropped and created for each size.
set -euo pipefail

QUICK=0
BACKEND=all
MODE=all
DURATION=
RUNS=
THREADS=2
CONNECTIONS=(32 256)
MODES=(confirm flip)
PG_URL=postgres://postgres@127.0.0.1:5432/okerr_bench
PSQL=(psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1)

usage() {
    echo "usage: bash bench/http.sh [--quick] [--backend sqlite|postgres|all] [--mode confirm|flip|all] [--connections \"32 256\"] [--duration SECONDS] [--runs N]" >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) QUICK=1 ;;
        --backend) BACKEND=${2:-}; shift ;;
        --mode) MODE=${2:-}; shift ;;
        --connections) read -r -a CONNECTIONS <<< "${2:-}"; shift ;;
        --duration) DURATION=${2:-}; shift ;;
        --runs) RUNS=${2:-}; shift ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
    shift
done
case $MODE in
    confirm|flip) MODES=("$MODE") ;;
    all) ;;
    *) usage ;;
esac
for c in "${CONNECTIONS[@]}"; do [[ $c =~ ^[0-9]+$ ]] || usage; done
case $BACKEND in
    sqlite) BACKENDS=(sqlite) ;;
    postgres) BACKENDS=(postgres) ;;
    all) BACKENDS=(sqlite postgres) ;;
    *) usage ;;
esac
if [[ $QUICK == 1 ]]; then
    SIZES=(1000)
    : "${DURATION:=5}" "${RUNS:=1}"
else
    SIZES=(1000 100000)
    : "${DURATION:=10}" "${RUNS:=3}"
fi
[[ $DURATION =~ ^[0-9]+$ && $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || usage

say() { echo "[http.sh] $*" >&2; }

cd "$(dirname "$0")/.."
ROOT=$PWD

# --- tools and binaries -------------------------------------------------------------
if ! command -v wrk > /dev/null; then
    say "installing wrk"
    SUDO=()
    [[ $(id -u) == 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >&2 \
        || { "${SUDO[@]}" apt-get update >&2 && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >&2; }
fi
for tool in python3 curl; do
    command -v $tool > /dev/null || { echo "http.sh needs $tool" >&2; exit 1; }
done
if [[ " ${BACKENDS[*]} " == *" postgres "* ]]; then
    command -v psql > /dev/null || { echo "http.sh needs psql for --backend postgres" >&2; exit 1; }
fi
if [[ -n ${OKERR_BIN_DIR:-} ]]; then
    BIN=$OKERR_BIN_DIR
else
    say "building the release binaries"
    cargo build --release -p okerr-bin -p okerr-bench >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi
LUA=$ROOT/bench/wrk/update.lua

# --- servers, cleaned up on exit ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/okerr-http-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2> /dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2> /dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for FILE PATTERN PID: until FILE has a line matching PATTERN (10 s at most).
wait_for() {
    local i
    for i in $(seq 100); do
        grep -q "$2" "$1" 2> /dev/null && return 0
        kill -0 "$3" 2> /dev/null || { echo "the server stopped:" >&2; cat "$1" >&2; exit 1; }
        sleep 0.1
    done
    echo "no '$2' in $1 after 10 s" >&2
    exit 1
}

stop() {
    local pid=$1 rest=() p
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || rest+=("$p"); done
    PIDS=("${rest[@]}")
}

CEILING_PORT=$(free_port)
"$BIN/okerr-ceiling" "$CEILING_PORT" 2> "$TMP/ceiling.err" &
CEILING_PID=$!
PIDS+=("$CEILING_PID")
wait_for "$TMP/ceiling.err" "listening on" "$CEILING_PID"
say "ceiling on 127.0.0.1:$CEILING_PORT"

# --- the database ---------------------------------------------------------------------
# sql BACKEND URL QUERY: one query, its rows on stdout (fields separated by |).
sql() {
    if [[ $1 == sqlite ]]; then
        python3 - "${2#sqlite://}" "$3" << 'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
for row in db.execute(sys.argv[2]):
    print("|".join(str(v) for v in row))
EOF
    else
        "${PSQL[@]}" -d okerr_bench -tA -c "$3"
    fi
}

# counts BACKEND URL AFTER_LOG_ID AFTER_OUTBOX_ID: "update_lines alert_lines other_lines
# notifications", the log lines with id > AFTER_LOG_ID and the notifications queued in the
# outbox with id > AFTER_OUTBOX_ID.
counts() {
    sql "$1" "$2" "SELECT
        COALESCE(SUM(CASE WHEN kind = 'update' THEN 1 ELSE 0 END), 0),
        COALESCE(SUM(CASE WHEN kind = 'alert' THEN 1 ELSE 0 END), 0),
        COALESCE(SUM(CASE WHEN kind NOT IN ('update', 'alert') THEN 1 ELSE 0 END), 0),
        (SELECT COUNT(*) FROM outbox WHERE id > $4)
        FROM log WHERE id > $3" | tr '|' ' '
}

# The indices of the indicators that are ERR now, one a line (for the flip mode).
err_names() {
    local status
    if [[ $1 == sqlite ]]; then
        status="json_extract(data, '\$.status')"
    else
        status="(data::jsonb ->> 'status')"
    fi
    sql "$1" "$2" "SELECT substr(name, 7) FROM indicators WHERE name LIKE 'bench:%' AND $status = 'ERR'"
}

# --- one wrk run ------------------------------------------------------------------------
# run_wrk PORT MODE N TEXTID CONNECTIONS ERRFILE OUT
run_wrk() {
    wrk -t"$THREADS" -c"$5" -d"${DURATION}s" --latency -s "$LUA" \
        "http://127.0.0.1:$1/update" -- "$2" "$3" "$4" "$THREADS" "$6" > "$7" 2>&1 \
        || { echo "wrk failed:" >&2; cat "$7" >&2; exit 1; }
}

# parse_wrk FILE: the run as one line of JSON.
parse_wrk() {
    python3 - "$1" << 'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", v)
    if not m:
        sys.exit("cannot read the latency %r in the output of wrk:\n%s" % (v, text))
    return float(m[1]) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4, "h": 3.6e6}[m[2]]
def num(pattern, default=None):
    m = re.search(pattern, text, re.M)
    if not m:
        if default is None:
            sys.exit("cannot find %r in the output of wrk:\n%s" % (pattern, text))
        return default
    return m[1]
run = {
    "rps": float(num(r"Requests/sec:\s+([\d.]+)")),
    "requests": int(num(r"(\d+) requests in")),
    "p50": ms(num(r"^\s+50%\s+(\S+)\s*$")),
    "p99": ms(num(r"^\s+99%\s+(\S+)\s*$")),
    "max": ms(num(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)")),
    "non2xx": int(num(r"Non-2xx or 3xx responses:\s+(\d+)", "0")),
    "sent": int(num(r"BENCH sent=(\d+)")),
    "acked": int(num(r"acked=(\d+)")),
    "bad": int(num(r"bad=(\d+)")),
}
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
run["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
print(json.dumps(run))
EOF
}

RESULTS=$TMP/results.jsonl
: > "$RESULTS"

for backend in "${BACKENDS[@]}"; do
    for n in "${SIZES[@]}"; do
        # A fresh database and a fresh okerr for each size.
        if [[ $backend == sqlite ]]; then
            mkdir -p "$TMP/db-$n"
            url="sqlite://$TMP/db-$n/okerr.db"
        else
            "${PSQL[@]}" -d postgres -c 'DROP DATABASE IF EXISTS okerr_bench' -c 'CREATE DATABASE okerr_bench' >&2
            url=$PG_URL
        fi
        port=$(free_port)
        out=$TMP/okerr-$backend-$n.out
        err=$TMP/okerr-$backend-$n.err
        "$BIN/okerr" --database "$url" serve --listen "127.0.0.1:$port" --max-indicators 0 --autocreate-burst 0 > "$out" 2> "$err" &
        okerr_pid=$!
        PIDS+=("$okerr_pid")
        wait_for "$err" "okerr listening on" "$okerr_pid"
        wait_for "$out" "^API key:" "$okerr_pid"
        textid=$(sed -n 's/^TextID: *//p' "$out")
        apikey=$(sed -n 's/^API key: *//p' "$out")
        # A member who gets the alerts: each flip queues its alert e-mail in the outbox (no
        # mail relay, so they stay there).
        "$BIN/okerr" --database "$url" member add "$textid" ops@example.com >&2
        say "$backend: okerr on 127.0.0.1:$port, project $textid; seeding $n indicators"
        "$BIN/okerr-bench-seed" "127.0.0.1:$port" "$textid" "$n" 64 >&2
        found=$(curl -sf -H "X-API-KEY: $apikey" "http://127.0.0.1:$port/api/indicators/$textid" | grep -c '^bench:' || true)
        if [[ $found != "$n" ]]; then
            echo "after seeding, the API lists $found indicators, not $n" >&2
            exit 1
        fi
        say "$backend: the API lists $found indicators"

        for mode in "${MODES[@]}"; do
            for c in "${CONNECTIONS[@]}"; do
                for run in $(seq "$RUNS"); do
                    errfile=$TMP/err-names
                    if [[ $mode == flip ]]; then err_names "$backend" "$url" > "$errfile"; else : > "$errfile"; fi
                    tag="$backend n=$n $mode c=$c run $run/$RUNS"
                    run_wrk "$CEILING_PORT" "$mode" "$n" "$textid" "$c" "$errfile" "$TMP/ceiling.txt"
                    ceiling=$(parse_wrk "$TMP/ceiling.txt")
                    last=$(sql "$backend" "$url" "SELECT COALESCE(MAX(id), 0) FROM log")
                    last_outbox=$(sql "$backend" "$url" "SELECT COALESCE(MAX(id), 0) FROM outbox")
                    run_wrk "$port" "$mode" "$n" "$textid" "$c" "$errfile" "$TMP/okerr.txt"
                    okerr=$(parse_wrk "$TMP/okerr.txt")
                    # Requests still in flight when wrk stopped: let okerr finish them.
                    sleep 1
                    read -r lines_update lines_alert lines_other queued <<< "$(counts "$backend" "$url" "$last" "$last_outbox")"
                    python3 - "$backend" "$n" "$mode" "$c" "$run" "$ceiling" "$okerr" \
                        "$lines_update" "$lines_alert" "$lines_other" "$queued" >> "$RESULTS" << 'EOF'
import json, sys
b, n, mode, c, run, ceiling, okerr, up, al, ot, q = sys.argv[1:]
print(json.dumps({"backend": b, "n": int(n), "mode": mode, "c": int(c), "run": int(run),
                  "ceiling": json.loads(ceiling), "okerr": json.loads(okerr),
                  "lines": {"update": int(up), "alert": int(al), "other": int(ot)},
                  "outbox": int(q)}))
EOF
                    python3 - "$tag" "$ceiling" "$okerr" "$lines_update" "$lines_alert" "$lines_other" "$queued" >&2 << 'EOF'
import json, sys
tag, ceiling, okerr = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
up, al, ot, q = (int(x) for x in sys.argv[4:8])
verdict = "OK" if okerr["acked"] <= up <= okerr["sent"] else "LOST"
print(f"[http.sh] {tag}: ceiling {ceiling['rps']:.0f}/s, okerr {okerr['rps']:.0f}/s "
      f"p50 {okerr['p50']:.2f} ms p99 {okerr['p99']:.2f} ms; sent {okerr['sent']} "
      f"acked {okerr['acked']} bad {okerr['bad']} socket errors {okerr['socket_errors']}; "
      f"log: {up} updates, {al} alerts, {ot} other; outbox: {q} -> {verdict}")
EOF
                done
            done
        done
        stop "$okerr_pid"
        if [[ $backend == sqlite ]]; then rm -rf "$TMP/db-$n"; fi
    done
done

# --- the table ----------------------------------------------------------------------------
python3 - "$RESULTS" "$DURATION" "$RUNS" << 'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
duration, runs = sys.argv[2], sys.argv[3]
groups = {}
for r in rows:
    groups.setdefault((r["backend"], r["n"], r["mode"], r["c"]), []).append(r)
med = statistics.median
print(f"wrk -t2, {duration} s per run, median of {runs} run(s) (spread min–max); "
      "latencies of okerr in ms; acked, found and lost summed over the runs.")
print()
print("| backend | indicators | mode | conns | okerr updates/s | p50 | p99 | max | "
      "ceiling req/s | okerr/ceiling | acked | found in log | log lines/update | "
      "alerts queued/update | lost |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
failed = False
for (b, n, mode, c), rs in groups.items():
    ok = [r["okerr"] for r in rs]
    rps = [o["rps"] for o in ok]
    ceil = med(r["ceiling"]["rps"] for r in rs)
    acked = sum(o["acked"] for o in ok)
    sent = sum(o["sent"] for o in ok)
    errors = sum(o["bad"] + o["socket_errors"] for o in ok)
    found = sum(r["lines"]["update"] for r in rs)
    lines = sum(r["lines"]["update"] + r["lines"]["alert"] + r["lines"]["other"] for r in rs)
    queued = sum(r.get("outbox", 0) for r in rs)
    lost = [max(0, r["okerr"]["acked"] - r["lines"]["update"]) for r in rs]
    extra = [r["lines"]["update"] > r["okerr"]["sent"] for r in rs]
    verdict = "OK, 0" if not any(lost) and not any(extra) else f"LOST, {sum(lost)}"
    if any(extra):
        verdict += " (more in the log than sent)"
    if any(lost) or any(extra):
        failed = True
    if errors:
        verdict += f"; {errors} errors"
    spread = f"{min(rps):.0f}–{max(rps):.0f}" if len(rps) > 1 else "–"
    print(f"| {b} | {n:,} | {mode} | {c} | {med(rps):.0f} ({spread}) | "
          f"{med(o['p50'] for o in ok):.2f} | {med(o['p99'] for o in ok):.2f} | "
          f"{med(o['max'] for o in ok):.1f} | {ceil:.0f} | {med(rps) / ceil:.2f} | "
          f"{acked:,} | {found:,} | {lines / max(found, 1):.2f} | "
          f"{queued / max(found, 1):.2f} | {verdict} |")
sys.exit(1 if failed else 0)
EOF
