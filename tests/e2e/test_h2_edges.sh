#!/usr/bin/env bash
# End-to-end regression checks for HTTP/2 edge cases found by an
# adversarial review of l7proxy (fixed in f9c0812). Each check starts its
# own proxy and misbehaving backend (tests/e2e/h2edge_backend.py; clients
# in tests/e2e/h2edge_client.py) and says what it measured:
#
#  1. h2 upstream: streams cancelled while their request bodies are blocked
#     behind a slow-reading backend, then an upload on another stream
#     (use after free / the shared upstream connection closed)
#  2. downstream connection window: uploads to a backend that answers
#     without reading the body (request bytes dropped unsent were never
#     given back: the client's connection window shrank to 0)
#  3. upstream streams answered while their bodies are still being sent:
#     a) they must not keep the backend's concurrent-stream slots
#     b) a backend opening the stream window after answering (use after free)
#  4. h2 upstream connect timeout against a backend that never completes
#     the handshake (it hung)
#  5. pooled HTTP/1 upstream connections live for idle_timeout_ms, not
#     connect_timeout_ms
#  6. a request with 130 header fields over h2 must not eject the backend
#  7. a slow-reading h2 client downloading a large body is not closed for
#     "no answer to PING", and a second response on the connection is prompt
#  8. a refused header block must not close the connection at the header
#     timeout while another stream waits
#
#   tests/e2e/test_h2_edges.sh [BUILD_DIR]     (default: build-asan)
#
# Everything runs in a private network namespace (fixed ports on its
# loopback); exits 77 without root; cleans up on any exit. About 30 s
# (40 s when checks fail: they wait for timeouts).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
PROXY=$BUILD/l7proxy/l7proxy
PY=/usr/bin/python3
NS=h2e$$
export ASAN_OPTIONS=detect_leaks=0

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: network namespaces need root"
  exit 77
fi
if [ ! -x "$PROXY" ]; then
  echo "not ok - no proxy binary at $PROXY"
  echo "0 passed, 1 failed"
  exit 1
fi
D=$(mktemp -d /tmp/portico-h2edge.XXXXXX)

cleanup() {
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { ip netns exec "$NS" "$@"; }
ip netns add "$NS" || exit 1
nsx ip link set lo up

passed=0
failed=0
# check OK|FAIL TEXT [FILE...]: a TAP line; on failure the files' last
# lines follow as diagnostics.
check() {
  local verdict=$1 text=$2 f
  shift 2
  if [ "$verdict" = OK ]; then
    echo "ok - $text"
    passed=$((passed + 1))
  else
    echo "not ok - $text"
    failed=$((failed + 1))
    for f in "$@"; do
      [ -s "$f" ] || continue
      echo "#   --- $(basename "$f"):"
      if sanitizer "$f"; then
        grep -m1 -A14 -E "ERROR: AddressSanitizer|runtime error:" "$f"
      else
        tail -n 12 "$f"
      fi | sed 's/^/#   /'
    done
  fi
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s at most).
wait_port() {
  local i
  for i in $(seq 50); do
    nsx timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# backend NAME MODE PORT [ARGS]: a backend from h2edge_backend.py; its pid
# in BE, its log $D/NAME.log.
backend() {
  local name=$1 mode=$2 port=$3
  shift 3
  nsx "$PY" "$E2E/h2edge_backend.py" "$mode" "$port" "$@" > "$D/$name.log" 2>&1 &
  BE=$!
  [ "$mode" = blackhole ] || wait_port "$port"
}

# proxy NAME PORT: the proxy with $D/NAME.conf; its pid in PX, log $D/NAME.log.
proxy() {
  nsx "$PROXY" -c "$D/$1.conf" > "$D/$1.log" 2>&1 &
  PX=$!
  wait_port "$2"
}

# conf NAME LISTEN_PORT BODY: a proxy configuration (one worker).
conf() {
  cat > "$D/$1.conf" <<EOC
pop = "t"; host = "h2edge"; workers = 1; access_log = "$D/$1.access.log";
listeners = ( { address = "127.0.0.1:$2"; } );
$3
EOC
}

# stop PID...: SIGTERM, then SIGKILL after 3 s.
stop() {
  local p i left
  kill -TERM "$@" 2>/dev/null
  for i in $(seq 30); do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}

# alive PID: running (not gone, not a zombie).
alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $st != Z* ]]
}
sanitizer() { grep -qE "ERROR: AddressSanitizer|runtime error:" "$1"; }
# health NAME PID: "proxy alive, no sanitizer report" or what is wrong.
health() {
  local h="proxy alive"
  alive "$2" || h="PROXY DEAD"
  if sanitizer "$D/$1.log"; then h="$h, SANITIZER REPORT"; else h="$h, no sanitizer report"; fi
  echo "$h"
}
healthy() { alive "$2" && ! sanitizer "$D/$1.log"; }
summary() { sed -n 's/^summary: //p' "$1" | tail -1; }
# ms SECONDS: whole milliseconds (curl's time_total is in seconds).
ms() { awk -v t="$1" 'BEGIN { printf "%d", t * 1000 }'; }

# --- 1. cancelled uploads behind a slow-reading h2c backend -------------------
c1() {
  conf p1 18110 'clusters = ( { name = "api"; protocol = "h2c"; backends = [ "127.0.0.1:18111" ]; } );'
  backend be1 slowread 18111 --slow-for 4
  proxy p1 18110
  nsx timeout 15 "$PY" "$E2E/h2edge_client.py" cancel 18110 --cancel-at 1.5 --wait 8 > "$D/c1.out" 2>&1
  local rc=$?
  sleep 0.5
  local v=FAIL
  [ $rc -eq 0 ] && healthy p1 "$PX" && v=OK
  check $v "h2 upstream: 2 uploads blocked behind a slow-reading backend cancelled at 1.5 s, then a 1 MiB upload on stream 5: $(summary "$D/c1.out"); $(health p1 "$PX")" \
    "$D/c1.out" "$D/p1.log" "$D/be1.log"
  stop "$PX" "$BE"
}

# --- 2. the client's connection window under early answers --------------------
c2() {
  conf p2 18120 'clusters = ( { name = "api"; protocol = "h2c"; backends = [ "127.0.0.1:18121" ]; } );'
  backend be2 noread 18121 --delay 0.3
  proxy p2 18120
  nsx timeout 30 "$PY" "$E2E/h2edge_client.py" uploads 18120 --count 14 --size 131070 --stall 3 > "$D/c2.out" 2>&1
  local rc=$?
  local v=FAIL
  [ $rc -eq 0 ] && healthy p2 "$PX" && v=OK
  check $v "h2 downstream connection window, one connection, backend answers 200 without reading: $(summary "$D/c2.out"); $(health p2 "$PX")" \
    "$D/c2.out" "$D/p2.log"
  stop "$PX" "$BE"
}

# --- 3a. answered-early upstream streams and the backend's stream limit -------
c3a() {
  conf p3 18130 'clusters = ( { name = "api"; protocol = "h2c"; backends = [ "127.0.0.1:18131" ]; request_timeout_ms = 2000; } );'
  backend be3 noread 18131 --delay 0.3 --max-streams 3
  proxy p3 18130
  local i st=() gets=() slow=0 bad=0 t
  for i in 1 2 3 4 5; do
    nsx timeout 10 "$PY" "$E2E/h2edge_client.py" uploads 18130 --count 1 --size 131070 --stall 4 >> "$D/c3.out" 2>&1
    st+=("$(sed -n 's/^summary: \([0-9]*\)\/.*/\1/p' "$D/c3.out" | tail -1)")
  done
  for i in 1 2; do
    read -r code t < <(nsx curl -s -m 4 -o /dev/null -w "%{http_code} %{time_total}\n" \
      --http2-prior-knowledge http://127.0.0.1:18130/get)
    gets+=("$code in $(ms "$t") ms")
    [ "$code" = 200 ] || bad=1
    [ "$(ms "$t")" -lt 1500 ] || slow=1
  done
  local v=FAIL ok_up
  ok_up=$(printf '%s\n' "${st[@]}" | grep -c '^1$')
  [ "$ok_up" -eq 5 ] && [ $bad -eq 0 ] && [ $slow -eq 0 ] && healthy p3 "$PX" && v=OK
  check $v "h2 upstream streams answered mid-upload free the backend's slots (MAX_CONCURRENT_STREAMS 3): $ok_up/5 uploads (one per connection) answered 200 with the whole body sent, then GETs: ${gets[*]} (limit 200 in 1500 ms); $(health p3 "$PX")" \
    "$D/c3.out" "$D/p3.log" "$D/be3.log"
  stop "$PX" "$BE"
}

# --- 3b. a stream window opened after the answer --------------------------------
c3b() {
  conf p4 18140 'clusters = ( { name = "api"; protocol = "h2c"; backends = [ "127.0.0.1:18141" ]; } );'
  backend be4 lateopen 18141 --delay 0.3 --open-after 0.5
  proxy p4 18140
  head -c 200000 /dev/zero > "$D/200k"
  local post get wu
  post=$(nsx curl -s -m 5 -o /dev/null -w "%{http_code}" --data-binary @"$D/200k" http://127.0.0.1:18140/up)
  sleep 1.2 # the backend's WINDOW_UPDATE comes 0.5 s after its answer
  get=$(nsx curl -s -m 3 -o /dev/null -w "%{http_code}" http://127.0.0.1:18140/get)
  sleep 0.3
  wu=$(grep -c "WINDOW_UPDATE stream" "$D/be4.log")
  local v=FAIL
  [ "$post" = 200 ] && [ "$get" = 200 ] && [ "$wu" -ge 1 ] && healthy p4 "$PX" && v=OK
  check $v "h2 upstream: 200 KB POST answered $post before its body was read, backend then sent $wu stream WINDOW_UPDATE(s), a GET after: ${get:-none}; $(health p4 "$PX")" \
    "$D/p4.log" "$D/be4.log"
  stop "$PX" "$BE"
}

# --- 4. h2 upstream connect timeout ------------------------------------------------
c4() {
  conf p5 18150 'clusters = ( { name = "api"; protocol = "h2c"; backends = [ "127.0.0.1:18151" ]; connect_timeout_ms = 500; } );'
  backend be5 blackhole 18151
  local i
  for i in $(seq 30); do grep -q "accept queue filled" "$D/be5.log" && break; sleep 0.1; done
  nsx "$PY" "$E2E/h2edge_client.py" noconnect 18151 > "$D/c5.out" 2>&1
  local pre=$?
  proxy p5 18150
  local code t
  read -r code t < <(nsx curl -s -m 5 -o /dev/null -w "%{http_code} %{time_total}\n" http://127.0.0.1:18150/)
  local v=FAIL
  [ $pre -eq 0 ] && [ "$code" = 502 ] && [ "$(ms "$t")" -lt 2000 ] && healthy p5 "$PX" && v=OK
  check $v "h2 upstream connect timeout 500 ms, backend drops SYNs ($(summary "$D/c5.out")): answered $code after $(ms "$t") ms (limit 502 in 2000 ms, curl gives up at 5000); $(health p5 "$PX")" \
    "$D/c5.out" "$D/p5.log"
  stop "$PX" "$BE"
}

# --- 5. pooled HTTP/1 connections and the connect deadline ----------------------
c5() {
  conf p6 18160 "admin_socket = \"$D/admin.sock\";
clusters = ( { name = \"web\"; protocol = \"http1\"; backends = [ \"127.0.0.1:18161\" ];
               connect_timeout_ms = 500; idle_timeout_ms = 4000; } );"
  nsx "$PY" "$E2E/fake_backend.py" 18161 "$D/fb6.requests" > "$D/be6.log" 2>&1 &
  BE=$!
  wait_port 18161
  proxy p6 18160
  local r1 r2 stats conns reuses
  r1=$(nsx curl -s -m 3 -o /dev/null -w "%{http_code}" http://127.0.0.1:18160/a)
  sleep 1.5
  r2=$(nsx curl -s -m 3 -o /dev/null -w "%{http_code}" http://127.0.0.1:18160/b)
  stats=$(nsx curl -s -m 3 --unix-socket "$D/admin.sock" http://x/v1/stats)
  read -r conns reuses < <("$PY" -c 'import json, sys
try:
    d = json.loads(sys.argv[1]); print(d["upstream_connects"], d["upstream_reuses"])
except Exception:
    print("? ?")' "$stats")
  local v=FAIL
  [ "$r1" = 200 ] && [ "$r2" = 200 ] && [ "$conns" = 1 ] && [ "$reuses" = 1 ] && healthy p6 "$PX" && v=OK
  check $v "http1 pool, connect_timeout_ms 500, idle_timeout_ms 4000: two GETs 1.5 s apart ($r1, $r2): upstream_connects $conns, upstream_reuses $reuses (want 1 and 1); $(health p6 "$PX")" \
    "$D/p6.log"
  stop "$PX" "$BE"
}

# --- 6. 130 header fields over h2 -----------------------------------------------------
c6() {
  conf p7 18170 'clusters = ( { name = "api"; protocol = "h2c"; backends = [ "127.0.0.1:18171" ]; } );'
  backend be7 ok 18171
  proxy p7 18170
  local H=() i codes=() big
  for i in $(seq 130); do H+=(-H "x-h$i: v"); done
  codes+=("$(nsx curl -s -m 3 -o /dev/null -w "%{http_code}" --http2-prior-knowledge http://127.0.0.1:18170/)")
  for i in 1 2 3; do
    codes+=("$(nsx curl -s -m 3 -o /dev/null -w "%{http_code}" --http2-prior-knowledge "${H[@]}" http://127.0.0.1:18170/)")
  done
  codes+=("$(nsx curl -s -m 3 -o /dev/null -w "%{http_code}" --http2-prior-knowledge http://127.0.0.1:18170/)")
  big=$(grep -c "x-h 130$" "$D/be7.log")
  local out=no
  grep -q "out for" "$D/p7.log" && out=yes
  local v=FAIL
  [ "${codes[*]}" = "200 200 200 200 200" ] && [ "$big" = 3 ] && [ $out = no ] && healthy p7 "$PX" && v=OK
  check $v "h2 to h2c: normal, 3 x 130 header fields, normal: ${codes[*]} (want all 200), backend got $big requests with all 130, 'backend ... out for' logged: $out; $(health p7 "$PX")" \
    "$D/p7.log" "$D/be7.log"
  stop "$PX" "$BE"
}

# --- 7. a slow-reading h2 client ----------------------------------------------------
c7() {
  conf p8 18180 'http2 = { ping_interval_ms = 1000; ping_timeout_ms = 2000; };
clusters = ( { name = "web"; protocol = "http1"; backends = [ "127.0.0.1:18181" ]; } );'
  backend be8 h1files 18181
  proxy p8 18180
  nsx timeout 15 "$PY" "$E2E/h2edge_client.py" slowread 18180 --run 7 --small-at 1 --small-within 2 --min-pings 1 > "$D/c8.out" 2>&1
  local rc=$?
  local pingclose=no
  grep -q "no answer to PING" "$D/p8.log" && pingclose=yes
  local v=FAIL
  [ $rc -eq 0 ] && [ $pingclose = no ] && healthy p8 "$PX" && v=OK
  check $v "h2 client reading ~320 KB/s, PING after 1 s of silence (2 s timeout): $(summary "$D/c8.out"); 'no answer to PING' logged: $pingclose; $(health p8 "$PX")" \
    "$D/c8.out" "$D/p8.log"
  stop "$PX" "$BE"
}

# --- 8. a refused header block and the header timeout ---------------------------
c8() {
  conf p9 18190 'client = { header_timeout_ms = 1500; };
clusters = ( { name = "web"; protocol = "http1"; backends = [ "127.0.0.1:18191" ]; } );'
  nsx "$PY" "$E2E/fake_backend.py" 18191 "$D/fb9.requests" > "$D/be9.log" 2>&1 &
  BE=$!
  wait_port 18191
  proxy p9 18190
  nsx timeout 12 "$PY" "$E2E/h2edge_client.py" badhdr 18190 --sleep 3 > "$D/c9.out" 2>&1
  local rc=$?
  local v=FAIL
  [ $rc -eq 0 ] && healthy p9 "$PX" && v=OK
  check $v "h2 header_timeout_ms 1500, a refused header block next to a 3 s request: $(summary "$D/c9.out"); $(health p9 "$PX")" \
    "$D/c9.out" "$D/p9.log"
  stop "$PX" "$BE"
}

# --- 9. a backend's SETTINGS_MAX_CONCURRENT_STREAMS: another connection --------
c9() {
  conf p10 18200 "admin_socket = \"$D/p10.sock\";
clusters = ( { name = \"api\"; protocol = \"h2c\"; backends = [ \"127.0.0.1:18201\" ]; } );"
  backend be10 noread 18201 --delay 1 --max-streams 2
  proxy p10 18200
  local i codes=() pids=() t0 t1 bad=0 sessions
  t0=$(date +%s.%N)
  for i in $(seq 8); do
    nsx curl -s -m 6 -o /dev/null -w "%{http_code}\n" --http2-prior-knowledge \
      "http://127.0.0.1:18200/r$i" > "$D/c10.$i" &
    pids+=($!)
  done
  wait "${pids[@]}"
  t1=$(date +%s.%N)
  for i in $(seq 8); do codes+=("$(cat "$D/c10.$i")"); [ "$(cat "$D/c10.$i")" = 200 ] || bad=1; done
  sessions=$(nsx curl -s --unix-socket "$D/p10.sock" http://x/v1/stats |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["upstream_h2_sessions"])')
  local took
  took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
  local v=FAIL
  # 8 requests held 1 s each by a backend taking 2 streams per connection:
  # at least 4 connections, all answered in about one hold time. Queued
  # behind 2 streams they would take 4 s; the bound leaves room for 8 curl
  # starts on a loaded 2-core host (2.5 s was once missed at 3.2 s).
  [ $bad -eq 0 ] && [ "${sessions:-0}" -ge 4 ] && [ "$took" -lt 3600 ] && healthy p10 "$PX" && v=OK
  check $v "h2 upstream, backend SETTINGS_MAX_CONCURRENT_STREAMS 2, 8 requests held 1 s each: ${codes[*]} in $took ms over ${sessions:-?} upstream connections (want >= 4, < 3600 ms); $(health p10 "$PX")" \
    "$D/p10.log" "$D/be10.log"
  stop "$PX" "$BE"
}

c1
c2
c3a
c3b
c4
c5
c6
c7
c8
c9

# Sanitizer reports from any proxy, including ones at shutdown.
reports=$(grep -lE "ERROR: AddressSanitizer|runtime error:" "$D"/p[0-9]*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
if [ -z "$reports" ]; then
  check OK "no sanitizer report in any proxy log (after shutdown)"
else
  check FAIL "sanitizer reports in: $reports" $(grep -lE "ERROR: AddressSanitizer|runtime error:" "$D"/p[0-9]*.log)
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
