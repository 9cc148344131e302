#!/usr/bin/env bash
# Tessera vs node-oidc-provider throughput benchmark.
#
#   bench/run.sh
#
# Installs wrk (apt-get) and bench/oidc-provider's npm dependencies if missing,
# builds target/release/tessera and the bare signer (example bare_signer, from
# bench/bare_signer.rs), starts Tessera (embedded default storage, fresh temp dir),
# node-oidc-provider and the bare signer on free 127.0.0.1 ports, registers the
# same API/clients in both providers, checks every row with curl, measures each
# row with wrk (BENCH_REPEAT runs per side, alternating sides, each after a
# warm-up) and prints a markdown table of medians, also written to
# bench/results/latest.md.
#
# The limit row: the es256 row has a third side, `bare`, the bare signer (axum,
# SHA-256 secret check, ES256 signing, the same request and answer, nothing else),
# run alternately with the other two; the report gives Tessera ES256 req/s /
# bare signer req/s (medians of the same run, target >= 0.8).
#
# Knobs (environment):
#   BENCH_CONNECTIONS=32   wrk -c
#   BENCH_THREADS=1        wrk -t
#   BENCH_DURATION=10s     wrk -d of each measured run
#   BENCH_WARMUP=2s        wrk -d of the warm-up before each measured run
#   BENCH_REPEAT=3         measured runs per row and side (median is reported)
#   BENCH_ONLY=            tessera | oidc-provider  (default: both; the bare side runs
#                          with tessera, since the ratio to it is Tessera's target)
#   BENCH_BARE=1           0: leave the bare signer (the es256 row's limit side) out
#   BENCH_ROWS=es256,dpop,rs256,opaque,introspection (subset / order of rows; dpop is
#                          Tessera only: ES256 tokens DPoP-bound, compared with the es256 row)
#   BENCH_DPOP_PROOFS=600000  DPoP proofs made before each dpop run (each is accepted once)
#   BENCH_SKIP_BUILD=1     do not run cargo build (binary must exist)
#   TESSERA_BIN=path       binary to benchmark (default: <target dir>/release/tessera;
#                          setting it skips the build)
#   BARE_SIGNER_BIN=path   bare signer binary (default: <target dir>/release/examples/bare_signer)
#
# Exit status: 0 if every selected row ran cleanly (PASS/MISS against the
# targets is informational), 1 if a row failed (non-200 responses, wrong token
# type, server died, ...), the bare side included.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
LIB="$BENCH_DIR/benchlib.py"
OIDC_DIR="$BENCH_DIR/oidc-provider"

CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
REPEAT=${BENCH_REPEAT:-3}
ONLY=${BENCH_ONLY:-}
ROWS_CSV=${BENCH_ROWS:-es256,dpop,rs256,opaque,introspection}
DPOP_PROOFS=${BENCH_DPOP_PROOFS:-600000}
BARE=${BENCH_BARE:-1}

case "$ONLY" in
  "" | both) SIDES=(tessera oidc-provider) ;;
  tessera) SIDES=(tessera) ;;
  oidc-provider | oidc | node) SIDES=(oidc-provider) ;;
  *) echo "BENCH_ONLY must be tessera or oidc-provider (got '$ONLY')" >&2; exit 2 ;;
esac
IFS=', ' read -r -a ROWS <<<"$ROWS_CSV"
for r in "${ROWS[@]}"; do
  case "$r" in es256 | dpop | rs256 | opaque | introspection) ;; *) echo "unknown row '$r' in BENCH_ROWS" >&2; exit 2 ;; esac
done
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_REPEAT must be a positive integer" >&2; exit 2; }
[[ "$BARE" == 0 || "$BARE" == 1 ]] || { echo "BENCH_BARE must be 0 or 1 (got '$BARE')" >&2; exit 2; }
# The bare signer is the limit Tessera's es256 row is measured against: it runs with the
# tessera side, only for the es256 row, last in each repetition.
if [[ "$BARE" == 1 && " ${SIDES[*]} " == *" tessera "* && " ${ROWS[*]} " == *" es256 "* ]]; then
  SIDES+=(bare)
fi

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf '!!! %s\n' "$*" >&2; }
has_side() { local s; for s in "${SIDES[@]}"; do [[ "$s" == "$1" ]] && return 0; done; return 1; }

API=https://api.example.com
SCOPE=read:things
TOKEN_BODY="grant_type=client_credentials&scope=$SCOPE"

# ---------------------------------------------------------------- prerequisites
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

for cmd in curl python3; do
  command -v "$cmd" >/dev/null || { echo "$cmd is required" >&2; exit 2; }
done
if ! command -v wrk >/dev/null; then
  log "installing wrk (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
if [[ " ${ROWS[*]} " == *" dpop "* ]] && ! python3 -c 'import cryptography' 2>/dev/null; then
  log "installing Python's cryptography (pip) for the DPoP proofs"
  python3 -m pip install --quiet cryptography >&2
fi

if has_side oidc-provider; then
  command -v node >/dev/null || { echo "node is required for the oidc-provider side" >&2; exit 2; }
  if [[ ! -f "$OIDC_DIR/node_modules/oidc-provider/package.json" \
     || "$OIDC_DIR/package-lock.json" -nt "$OIDC_DIR/node_modules/.package-lock.json" ]]; then
    log "installing bench/oidc-provider npm dependencies (npm ci)"
    (cd "$OIDC_DIR" && npm ci --no-audit --no-fund >&2)
  fi
fi

abs_path() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

if has_side tessera; then
  TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
  if [[ -z "${TESSERA_BIN:-}" ]]; then
    TESSERA_BIN="$TARGET_DIR/release/tessera"
    if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
      build=(cargo build --release -p tessera-server --bin tessera)
      has_side bare && build+=(--example bare_signer)
      log "building tessera (${build[*]})"
      (cd "$ROOT" && "${build[@]}" >&2)
    fi
  fi
  [[ -x "$TESSERA_BIN" ]] || { echo "tessera binary not found at $TESSERA_BIN" >&2; exit 2; }
  TESSERA_BIN=$(abs_path "$TESSERA_BIN")
fi
if has_side bare; then
  BARE_SIGNER_BIN=${BARE_SIGNER_BIN:-$TARGET_DIR/release/examples/bare_signer}
  [[ -x "$BARE_SIGNER_BIN" ]] || {
    echo "bare signer binary not found at $BARE_SIGNER_BIN (cargo build --release -p tessera-server --example bare_signer, or set BARE_SIGNER_BIN, or BENCH_BARE=0)" >&2
    exit 2
  }
  BARE_SIGNER_BIN=$(abs_path "$BARE_SIGNER_BIN")
fi

# ---------------------------------------------------------------- lifecycle
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench.XXXXXX")
TESSERA_PID=""
OIDC_PID=""
BARE_PID=""

stop_pid() {
  local pid=$1 i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$TESSERA_PID"
  stop_pid "$OIDC_PID"
  stop_pid "$BARE_PID"
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

RESULTS="$TMP/results.txt"
FAILURES="$TMP/failures.tsv"
: >"$RESULTS"
: >"$FAILURES"

free_port() { python3 "$LIB" free-port; }

# wait_ready NAME PID URL LOGFILE
wait_ready() {
  local name=$1 pid=$2 url=$3 logf=$4 i
  for i in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      warn "$name exited during start-up; log:"
      tail -n 50 "$logf" >&2 || true
      exit 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true) == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  warn "$name did not answer 200 on $url within 30 s; log:"
  tail -n 50 "$logf" >&2 || true
  exit 1
}

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 | tr -d '\n')"; }

declare -A BASE CLIENT_ID CLIENT_SECRET PID_OF

# ---------------------------------------------------------------- Tessera
if has_side tessera; then
  TPORT=$(free_port)
  BASE[tessera]="http://127.0.0.1:$TPORT"
  tessera_env=(TESSERA_LISTEN="127.0.0.1:$TPORT" TESSERA_ISSUER="http://127.0.0.1:$TPORT" RUST_LOG=warn)
  log "starting tessera on ${BASE[tessera]} (data in $TMP/tessera-data)"
  (cd "$TMP" && exec env "${tessera_env[@]}" "$TESSERA_BIN" serve) >"$TMP/tessera.log" 2>&1 &
  TESSERA_PID=$!
  PID_OF[tessera]=$TESSERA_PID
  wait_ready tessera "$TESSERA_PID" "${BASE[tessera]}/readyz" "$TMP/tessera.log"

  tessera_cli() { (cd "$TMP" && env "${tessera_env[@]}" "$TESSERA_BIN" "$@"); }

  log "registering API $API and clients bench-es256, bench-rs256, bench-opaque"
  tessera_cli api create --identifier "$API" --scope "$SCOPE" --output json >"$TMP/api.json"
  for c in es256 rs256 opaque; do
    case $c in
      es256) fmt=(--token-format jwt --signing-alg ES256) ;;
      rs256) fmt=(--token-format jwt --signing-alg RS256) ;;
      opaque) fmt=(--token-format opaque) ;;
    esac
    tessera_cli client create --type m2m --name "bench-$c" --api "$API" --scope "$SCOPE" \
      "${fmt[@]}" --output json >"$TMP/client-$c.json"
    CLIENT_ID[tessera:$c]=$(python3 "$LIB" json-get client_id <"$TMP/client-$c.json")
    CLIENT_SECRET[tessera:$c]=$(python3 "$LIB" json-get client_secret <"$TMP/client-$c.json")
  done
  sleep 1.5 # the server picks up CLI changes within a second
fi

# ---------------------------------------------------------------- node-oidc-provider
if has_side oidc-provider; then
  OPORT=$(free_port)
  while [[ "${TPORT:-}" == "$OPORT" ]]; do OPORT=$(free_port); done
  BASE[oidc-provider]="http://127.0.0.1:$OPORT"
  log "starting node-oidc-provider on ${BASE[oidc-provider]} (one node process)"
  (cd "$OIDC_DIR" && exec env NODE_ENV=production PORT="$OPORT" node server.mjs) >"$TMP/oidc-provider.log" 2>&1 &
  OIDC_PID=$!
  PID_OF[oidc-provider]=$OIDC_PID
  wait_ready oidc-provider "$OIDC_PID" "${BASE[oidc-provider]}/.well-known/openid-configuration" "$TMP/oidc-provider.log"
  # static clients, see bench/oidc-provider/server.mjs
  for c in es256 rs256 opaque; do
    CLIENT_ID[oidc-provider:$c]=$c
    CLIENT_SECRET[oidc-provider:$c]="$c-secret-0123456789abcdefghijklmnopqrstuvwxyz"
  done
fi

# ---------------------------------------------------------------- the bare signer
if has_side bare; then
  BPORT=$(free_port)
  while [[ "$BPORT" == "${TPORT:-}" || "$BPORT" == "${OPORT:-}" ]]; do BPORT=$(free_port); done
  BASE[bare]="http://127.0.0.1:$BPORT"
  CLIENT_ID[bare:es256]=bare
  CLIENT_SECRET[bare:es256]=$(python3 "$LIB" random-secret)
  log "starting the bare signer on ${BASE[bare]} (the es256 row's limit side)"
  "$BARE_SIGNER_BIN" "$BPORT" "${CLIENT_ID[bare:es256]}" "${CLIENT_SECRET[bare:es256]}" \
    "${BASE[bare]}" "$API" "$SCOPE" >"$TMP/bare.log" 2>&1 &
  BARE_PID=$!
  PID_OF[bare]=$BARE_PID
  wait_ready "bare signer" "$BARE_PID" "${BASE[bare]}/readyz" "$TMP/bare.log"
fi

# ---------------------------------------------------------------- rows
row_label() {
  case $1 in
    es256) echo "client_credentials JWT ES256" ;;
    dpop) echo "client_credentials JWT ES256, DPoP-bound" ;;
    rs256) echo "client_credentials JWT RS256" ;;
    opaque) echo "client_credentials opaque" ;;
    introspection) echo "introspection" ;;
  esac
}
row_client() { case $1 in introspection) echo opaque ;; dpop) echo es256 ;; *) echo "$1" ;; esac; }
row_path() { case $1 in introspection) echo /introspect ;; *) echo /token ;; esac; }

declare -A FAILED # side:row -> reason
fail_row() {
  local side=$1 row=$2 why=$3
  FAILED[$side:$row]=$why
  printf '%s\t%s\t%s\n' "$side" "$row" "$why" >>"$FAILURES"
  warn "ROW FAILED: $side / $(row_label "$row"): $why"
}

# post SIDE CLIENT PATH BODY OUTFILE -> prints HTTP status
post() {
  local side=$1 client=$2 path=$3 body=$4 out=$5
  curl -s -o "$out" -w '%{http_code}' --max-time 10 -X POST \
    -H 'Content-Type: application/x-www-form-urlencoded' -H 'Accept: application/json' \
    -H "Authorization: $(basic "${CLIENT_ID[$side:$client]}" "${CLIENT_SECRET[$side:$client]}")" \
    --data-raw "$body" "${BASE[$side]}$path" || true
}

# prepare SIDE ROW: verify the row with curl and set REQ_BODY / REQ_EXPECT for wrk.
prepare() {
  local side=$1 row=$2 status check out="$TMP/curl.out"
  case $row in
    es256 | rs256 | opaque)
      status=$(post "$side" "$row" /token "$TOKEN_BODY" "$out")
      if [[ "$status" != 200 ]]; then
        fail_row "$side" "$row" "POST /token answered $status: $(head -c 300 "$out")"
        return 1
      fi
      local expected=opaque
      [[ $row == es256 ]] && expected=ES256
      [[ $row == rs256 ]] && expected=RS256
      if ! check=$(python3 "$LIB" check-token "$expected" <"$out" 2>&1); then
        fail_row "$side" "$row" "$check"
        return 1
      fi
      REQ_BODY=$TOKEN_BODY
      REQ_EXPECT='"access_token"'
      ;;
    dpop)
      # Proofs made ahead (each jti is accepted once; a proof is good for 60 s plus clock_skew
      # after its iat, which covers the row), the first one checked with curl.
      DPOP_FILE="$TMP/dpop-proofs.txt"
      log "making $DPOP_PROOFS DPoP proofs"
      python3 "$BENCH_DIR/dpop_proofs.py" "${BASE[$side]}/token" "$DPOP_PROOFS" "$DPOP_FILE"
      status=$(curl -s -o "$out" -w '%{http_code}' --max-time 10 -X POST \
        -H 'Content-Type: application/x-www-form-urlencoded' -H 'Accept: application/json' \
        -H "Authorization: $(basic "${CLIENT_ID[$side:es256]}" "${CLIENT_SECRET[$side:es256]}")" \
        -H "DPoP: $(head -n 1 "$DPOP_FILE")" --data-raw "$TOKEN_BODY" "${BASE[$side]}/token" || true)
      if [[ "$status" != 200 ]]; then
        fail_row "$side" "$row" "POST /token with a DPoP proof answered $status: $(head -c 300 "$out")"
        return 1
      fi
      if ! check=$(python3 "$LIB" check-token ES256+DPoP <"$out" 2>&1); then
        fail_row "$side" "$row" "$check"
        return 1
      fi
      DPOP_NEXT=1
      REQ_BODY=$TOKEN_BODY
      REQ_EXPECT='"token_type":"DPoP"'
      ;;
    introspection)
      # a fresh opaque token for every run (the in-memory stores stay small)
      status=$(post "$side" opaque /token "$TOKEN_BODY" "$out")
      if [[ "$status" != 200 ]]; then
        fail_row "$side" "$row" "POST /token (opaque, for introspection) answered $status: $(head -c 300 "$out")"
        return 1
      fi
      local tok
      tok=$(python3 "$LIB" json-get access_token <"$out")
      REQ_BODY="token=$(python3 "$LIB" urlencode "$tok")"
      status=$(post "$side" opaque /introspect "$REQ_BODY" "$out")
      if [[ "$status" != 200 ]]; then
        fail_row "$side" "$row" "POST /introspect answered $status: $(head -c 300 "$out")"
        return 1
      fi
      if ! check=$(python3 "$LIB" check-introspection <"$out" 2>&1); then
        fail_row "$side" "$row" "$check"
        return 1
      fi
      REQ_EXPECT='"active"%s*:%s*true'
      ;;
  esac
  CHECK_MSG=$check
}

# run_wrk SIDE ROW DURATION OUTFILE -> 0 if clean
run_wrk() {
  local side=$1 row=$2 dur=$3 out=$4 client
  client=$(row_client "$row")
  local script=post.lua
  [[ $row == dpop ]] && script=dpop.lua
  BENCH_BODY=$REQ_BODY BENCH_EXPECT=$REQ_EXPECT BENCH_DIR=$BENCH_DIR \
    BENCH_DPOP_FILE=${DPOP_FILE:-} BENCH_DPOP_OFFSET=${DPOP_NEXT:-0} \
    BENCH_AUTH=$(basic "${CLIENT_ID[$side:$client]}" "${CLIENT_SECRET[$side:$client]}") \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency -s "$BENCH_DIR/$script" \
    "${BASE[$side]}$(row_path "$row")" >"$out" 2>&1 || {
    fail_row "$side" "$row" "wrk exited with an error: $(tail -n 5 "$out" | tr '\n' ' ')"
    return 1
  }
  local line
  line=$(grep '^BENCH_RESULT ' "$out" || true)
  if [[ -z "$line" ]]; then
    fail_row "$side" "$row" "no BENCH_RESULT in wrk output: $(tail -n 5 "$out" | tr '\n' ' ')"
    return 1
  fi
  local non200 badbody requests
  # The proofs a run used (those in flight at its end included) are spent.
  requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
  [[ $row == dpop ]] && DPOP_NEXT=$((DPOP_NEXT + requests + CONNECTIONS))
  non200=$(sed -n 's/.* non200=\([0-9]*\).*/\1/p' <<<"$line")
  badbody=$(sed -n 's/.* badbody=\([0-9]*\).*/\1/p' <<<"$line")
  if [[ "$non200" != 0 || "$badbody" != 0 ]]; then
    cat "$out" >&2
    fail_row "$side" "$row" "$non200 responses with status != 200 and $badbody unexpected 200 bodies ($(grep '^First bad response' "$out" | head -c 300))"
    return 1
  fi
  if ! kill -0 "${PID_OF[$side]}" 2>/dev/null; then
    fail_row "$side" "$row" "server process died"
    return 1
  fi
  WRK_LINE=$line
}

for row in "${ROWS[@]}"; do
  log "row: $(row_label "$row")"
  for rep in $(seq 1 "$REPEAT"); do
    for side in "${SIDES[@]}"; do
      [[ -n "${FAILED[$side:$row]:-}" ]] && continue
      [[ $row == dpop && $side != tessera ]] && continue
      [[ $side == bare && $row != es256 ]] && continue
      if ! kill -0 "${PID_OF[$side]}" 2>/dev/null; then
        fail_row "$side" "$row" "server process is not running (see log below)"
        tail -n 30 "$TMP/$side.log" >&2 || true
        continue
      fi
      REQ_BODY="" REQ_EXPECT="" CHECK_MSG=""
      prepare "$side" "$row" || continue
      [[ $rep == 1 ]] && log "  $side: curl check OK: $CHECK_MSG"
      run_wrk "$side" "$row" "$WARMUP" "$TMP/wrk-warmup.out" || continue
      run_wrk "$side" "$row" "$DURATION" "$TMP/wrk-$side-$row-$rep.out" || continue
      echo "RUN $side $row $rep ${WRK_LINE#BENCH_RESULT }" >>"$RESULTS"
      rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$WRK_LINE")
      p50=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$WRK_LINE")
      p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$WRK_LINE")
      log "  $side run $rep/$REPEAT: $rps req/s, p50 ${p50} us, p99 ${p99} us"
    done
  done
done

# ---------------------------------------------------------------- report
rss_of() { awk -v k="$2:" '$1 == k { print $2 " " $3 }' "/proc/$1/status" 2>/dev/null || true; }
for side in "${SIDES[@]}"; do
  v=${side//-/_}
  pid=${PID_OF[$side]}
  export "BENCH_META_RSS_${v^^}=$(rss_of "$pid" VmRSS)"
  export "BENCH_META_HWM_${v^^}=$(rss_of "$pid" VmHWM)"
done

export BENCH_META_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
export BENCH_META_CPUS="$(nproc)"
export BENCH_META_CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)"
export BENCH_META_KERNEL="$(uname -sr)"
export BENCH_META_WRK_VERSION="$(wrk -v 2>&1 | head -n 1 | awk '{ print $1 " " $2 }')"
export BENCH_META_WRK_CMD="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/post.lua <url>  (warm-up: -d$WARMUP)"
export BENCH_META_REPEAT="$REPEAT" BENCH_META_DURATION="$DURATION" BENCH_META_WARMUP="$WARMUP"
export BENCH_META_SIDES="${SIDES[*]}" BENCH_META_ROWS="${ROWS[*]}"
# A binary inside the checkout by its path there, any other by its file name (no machine paths).
shown() { case "$1" in "$ROOT"/*) echo "${1#"$ROOT"/}" ;; *) basename "$1" ;; esac; }
if has_side tessera; then
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
  if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then rev="$rev (dirty)"; fi
  export BENCH_META_TESSERA_VERSION="$(shown "$TESSERA_BIN"), git $rev, $(nproc) CPUs available"
fi
if has_side bare; then
  export BENCH_META_BARE_VERSION="$(shown "$BARE_SIGNER_BIN") (bench/bare_signer.rs)"
fi
if has_side oidc-provider; then
  export BENCH_META_OIDC_VERSION="$(node -p "require('$OIDC_DIR/node_modules/oidc-provider/package.json').version")"
  export BENCH_META_NODE_VERSION="$(node --version)"
fi

mkdir -p "$BENCH_DIR/results"
python3 "$LIB" report "$RESULTS" "$FAILURES" >"$TMP/report.md"
cp "$TMP/report.md" "$BENCH_DIR/results/latest.md"
echo
cat "$TMP/report.md"
echo
log "written to bench/results/latest.md"

if [[ -s "$FAILURES" ]]; then
  warn "some rows FAILED (see above)"
  exit 1
fi
