#!/usr/bin/env bash
# Active health checks of l7proxy's backends, end to end: the proxy (two
# workers) in front of three nginx backends (cluster "web", type "http")
# and two gRPC backends (cluster "grpc", h2c, type "grpc"), with probes
# every 1000 ms, timeout 500 ms, rise 2, fall 3, under load:
#  1. web, h2load (HTTP/2 and HTTP/1.1) for 12 s: one nginx is stopped
#     (nginx -s stop; WEB_STOP_SIGNAL=KILL kills it instead); it
#     must be "down" in the API within fall x interval + timeout, come back
#     "up" within rise x interval of its restart and get requests again;
#     the requests that failed meanwhile are counted (<= 1% allowed);
#  2. web: a backend whose /healthz says 503 but that still serves goes
#     down and gets no request while down (so the workers skip it on
#     active health alone), then returns;
#  3. web: every backend down by its probes: the proxy fails open (all
#     requests still answered) and the API says "panic";
#  4. grpc, a gRPC client for the whole phase: a backend whose
#     grpc.health.v1 Check says NOT_SERVING goes down (and gets no call),
#     returns when SERVING; a backend whose server stops (SIGTERM, or
#     $GRPC_STOP_SIGNAL) goes down, returns after its restart; failed
#     calls are counted (<= 1%).
# At the start, probes over TLS: an "h2" cluster (HTTP/2, ALPN h2) and an
# "https" one (HTTP/1.1) are up; one whose tls.sni the certificate does
# not name is down, the API saying why.
# Times are checked with 300 ms of slack for the signal, the process
# stopping and the 20 ms API polling.
#
#   tests/e2e/test_active_health.sh [BUILD_DIR]     (default: build-asan)
#
# A private network namespace (fixed ports on its loopback only); exits 77
# without root; cleans up on any exit. About 60 s.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
PROXY=$BUILD/l7proxy/l7proxy
PY=/usr/bin/python3
INTERVAL=1000 TIMEOUT=500 RISE=2 FALL=3 SLACK=300
DOWN_MS=$((FALL * INTERVAL + TIMEOUT))
UP_MS=$((RISE * INTERVAL))
MAX_FAIL_PCT=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
# shellcheck source=tests/e2e/tap.sh
. "$E2E/tap.sh"
# shellcheck source=tests/e2e/netns_lib.sh
. "$E2E/netns_lib.sh"
netns_begin "ahc$$" active-health

[ -x "$PROXY" ] || { echo "not ok - no binary at $PROXY"; echo "0 passed, 1 failed"; exit 1; }
export PORTICO_GRPC_STUBS_DIR=$D/stubs

now_ms() { date +%s%3N; }
# wait_state CLUSTER BACKEND STATE SINCE_MS BOUND_MS: ok/bad with the time taken.
wait_state() {
  local out ms rc
  out=$(nsx "$PY" "$E2E/active_health.py" wait --sock "$D/proxy.sock" --cluster "$1" \
    --backend "$2" --state "$3" --since-ms "$4" --timeout-ms $(($5 + SLACK + 2000)))
  rc=$?
  ms=${out%% *}
  if [ "$rc" -eq 0 ] && [ "$ms" -le $(($5 + SLACK)) ]; then
    ok "$1 $2 is $3 after $ms ms (bound $5 ms): ${out#* }"
  else
    bad "$1 $2 not $3 within $5 ms (+$SLACK): $out"
  fi
}
# Requests (not probes) a web backend logged after Unix time $2 (seconds).
served_after() { awk -v t="$2" '$1 > t && $2 != "/healthz"' "$D/be$1.log" | wc -l; }
# Calls a gRPC backend logged after Unix time $2 (seconds).
calls_after() { awk -v t="$2" '$1 > t' "$D/$1.calls" 2>/dev/null | wc -l; }
ms_to_s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
# h2load's counts: "DONE BAD" (bad = not 2xx among the done, plus errored).
h2counts() {
  local req codes
  req=$(grep '^requests:' "$1")
  codes=$(grep '^status codes:' "$1")
  [[ $req =~ ([0-9]+)\ done,\ ([0-9]+)\ succeeded,\ ([0-9]+)\ failed,\ ([0-9]+)\ errored ]] || {
    echo "0 0"; return; }
  local done=${BASH_REMATCH[1]} errored=${BASH_REMATCH[4]} two=0
  [[ $codes =~ ([0-9]+)\ 2xx ]] && two=${BASH_REMATCH[1]}
  echo "$done $((done - two + errored))"
}

# --- backends and the proxy -------------------------------------------------------
(cd "$D" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=backend.test" -addext "subjectAltName=DNS:backend.test" -keyout tls.key \
  -out tls.pem 2>/dev/null) || { bad "a test certificate"; exit 1; }
cat > "$D/nginx-tls.conf" <<EOF
user root; worker_processes 1; pid $D/nginx-tls.pid; error_log $D/nginx-tls.err;
events { worker_connections 256; }
http {
  access_log off; ssl_certificate $D/tls.pem; ssl_certificate_key $D/tls.key;
  server { listen 127.0.0.1:18291 ssl http2; location = /healthz { return 200 "ok\n"; } }
  server { listen 127.0.0.1:18292 ssl; location = /healthz { return 200 "ok\n"; } }
}
EOF
nsx nginx -c "$D/nginx-tls.conf" || { bad "nginx (TLS) starts"; cat "$D/nginx-tls.err"; exit 1; }
for port in 18281 18282 18283; do
  cat > "$D/nginx$port.conf" <<EOF
user root; worker_processes 1; pid $D/nginx$port.pid; error_log $D/nginx$port.err;
events { worker_connections 4096; }
http {
  log_format t '\$msec \$uri \$status';
  keepalive_requests 100000;
  server { listen 127.0.0.1:$port; access_log $D/be$port.log t;
           location = /healthz { if (-f $D/fail$port) { return 503; } return 200 "ok\n"; }
           location / { return 200 "be$port\n"; } }
}
EOF
  nsx nginx -c "$D/nginx$port.conf" || { bad "nginx $port starts"; cat "$D/nginx$port.err"; exit 1; }
done
cat > "$D/l7.conf" <<EOF
pop = "t"; host = "ahc"; workers = 2; access_log = ""; admin_socket = "$D/proxy.sock";
listeners = ( { address = "127.0.0.1:18280"; } );
clusters = (
  { name = "web"; backends = [ "127.0.0.1:18281", "127.0.0.1:18282", "127.0.0.1:18283" ];
    health = { type = "http"; path = "/healthz"; expect = 200; host = "web.test";
               interval = $INTERVAL; timeout = $TIMEOUT; rise = $RISE; fall = $FALL; }; },
  { name = "grpc"; protocol = "h2c"; backends = [ "127.0.0.1:50261", "127.0.0.1:50262" ];
    health = { type = "grpc"; service = "grpc.testing.TestService";
               interval = $INTERVAL; timeout = $TIMEOUT; rise = $RISE; fall = $FALL; }; },
  { name = "tls-h2"; protocol = "h2"; backends = [ "127.0.0.1:18291" ];
    tls = { ca = "$D/tls.pem"; sni = "backend.test"; };
    health = { type = "http"; path = "/healthz"; interval = $INTERVAL; timeout = $TIMEOUT; }; },
  { name = "tls-h1"; protocol = "https"; backends = [ "127.0.0.1:18292" ];
    tls = { ca = "$D/tls.pem"; sni = "backend.test"; };
    health = { type = "http"; path = "/healthz"; interval = $INTERVAL; timeout = $TIMEOUT; }; },
  { name = "tls-bad"; protocol = "https"; backends = [ "127.0.0.1:18292" ];
    tls = { ca = "$D/tls.pem"; sni = "other.test"; };
    health = { type = "http"; path = "/healthz"; interval = $INTERVAL; timeout = $TIMEOUT; }; }
);
routes = ( { path_prefix = "/grpc.testing.TestService/"; cluster = "grpc"; },
           { path_prefix = "/"; cluster = "web"; } );
EOF
grpc_start() { # grpc_start g1|g2 PORT
  nsx "$PY" "$E2E/active_health.py" grpc-server --listen "127.0.0.1:$2" \
    --status-file "$D/$1.status" --events "$D/$1.calls" >> "$D/$1.log" 2>&1 &
}
# The stubs once, before two servers race to generate them.
"$PY" -c "import sys; sys.path.insert(0, '$REPO/deploy/grpc'); import interop_pb; interop_pb.load()" ||
  { bad "gRPC stubs"; exit 1; }
grpc_start g1 50261
grpc_start g2 50262
nsx "$PROXY" -c "$D/l7.conf" > "$D/l7.log" 2>&1 &
PX=$!
wait_port 18280 || { bad "proxy listens"; cat "$D/l7.log"; exit 1; }
wait_port 50261 && wait_port 50262 || { bad "gRPC backends listen"; cat "$D"/g?.log; exit 1; }
t0=$(now_ms)
for b in 18281 18282 18283; do wait_state web "127.0.0.1:$b" up "$t0" 2000; done
for b in 50261 50262; do wait_state grpc "127.0.0.1:$b" up "$t0" 2000; done
wait_state tls-h2 127.0.0.1:18291 up "$t0" 2000
wait_state tls-h1 127.0.0.1:18292 up "$t0" 2000
# Unchecked to down takes `fall` probes, the first within a second.
wait_state tls-bad 127.0.0.1:18292 down "$t0" "$DOWN_MS"
nsx "$PY" "$E2E/active_health.py" show --sock "$D/proxy.sock" --cluster tls-bad |
  grep -qi '"last_error": "TLS handshake: certificate: hostname mismatch"' &&
  ok "tls-bad says why: the certificate does not verify for its SNI" ||
  bad "tls-bad: $(nsx "$PY" "$E2E/active_health.py" show --sock "$D/proxy.sock" --cluster tls-bad)"

# --- 1. web: a backend stops under load, and comes back -------------------------------
nsx h2load -c 4 -m 2 --rps 100 -D 12 http://127.0.0.1:18280/ > "$D/h2a.out" 2>&1 &
L1=$!
nsx h2load --h1 -c 2 --rps 100 -D 12 http://127.0.0.1:18280/ > "$D/h1a.out" 2>&1 &
L2=$!
sleep 1.5
t_kill=$(now_ms)
if [ "${WEB_STOP_SIGNAL:-}" = KILL ]; then
  master=$(cat "$D/nginx18281.pid")
  kill -KILL $(pgrep -P "$master") "$master"
else
  nsx nginx -c "$D/nginx18281.conf" -s stop
fi
wait_state web 127.0.0.1:18281 down "$t_kill" "$DOWN_MS"
row=$("$BUILD/ctl/lbctl" -p "$D/proxy.sock" upstream list web | grep '127.0.0.1:18281')
if [[ $row =~ 127\.0\.0\.1:18281\ +[0-9]+\ +[a-z\ ]+\ down ]]; then
  ok "lbctl upstream list shows it down by its probes ($(echo $row))"
else
  bad "lbctl upstream list shows it down by its probes: $row"
fi
sleep 1
t_start=$(now_ms)
nsx nginx -c "$D/nginx18281.conf" || bad "nginx 18281 restarts"
wait_state web 127.0.0.1:18281 up "$t_start" "$UP_MS"
t_up=$(now_ms)
wait "$L1" "$L2"
n=$(served_after 18281 "$(ms_to_s "$t_up")")
[ "$n" -gt 0 ] && ok "the restarted backend serves again ($n requests after it was up)" ||
  bad "the restarted backend got no request after it was up"
read -r d2 b2 < <(h2counts "$D/h2a.out")
read -r d1 b1 < <(h2counts "$D/h1a.out")
done_a=$((d1 + d2)) bad_a=$((b1 + b2))
echo "# h2: $(grep -E '^(requests|status codes):' "$D/h2a.out" | tr '\n' ' ')"
echo "# h1: $(grep -E '^(requests|status codes):' "$D/h1a.out" | tr '\n' ' ')"
if [ "$done_a" -gt 1000 ] && [ $((bad_a * 100)) -le $((done_a * MAX_FAIL_PCT)) ]; then
  ok "web, one backend stopped and restarted: $bad_a of $done_a requests failed (<= $MAX_FAIL_PCT%)"
else
  bad "web, one backend stopped and restarted: $bad_a of $done_a requests failed"
fi

# --- 2. web: /healthz fails, the backend still serves: skipped on active health alone --
nsx h2load -c 4 -m 2 --rps 100 -D 9 http://127.0.0.1:18280/ > "$D/h2b.out" 2>&1 &
L1=$!
nsx h2load --h1 -c 2 --rps 100 -D 9 http://127.0.0.1:18280/ > "$D/h1b.out" 2>&1 &
L2=$!
sleep 1
t=$(now_ms)
touch "$D/fail18282"
wait_state web 127.0.0.1:18282 down "$t" "$DOWN_MS"
t_down=$(now_ms)
sleep 2
n=$(served_after 18282 "$(ms_to_s $((t_down + 100)))")
others=$(served_after 18283 "$(ms_to_s $((t_down + 100)))")
[ "$n" -eq 0 ] && [ "$others" -gt 0 ] &&
  ok "a backend down by its probes takes no request ($others went to another meanwhile)" ||
  bad "the backend down by its probes took $n requests (another: $others)"
t=$(now_ms)
rm -f "$D/fail18282"
wait_state web 127.0.0.1:18282 up "$t" "$UP_MS"
t_up=$(now_ms)
wait "$L1" "$L2"
n=$(served_after 18282 "$(ms_to_s "$t_up")")
[ "$n" -gt 0 ] && ok "it takes requests again once up ($n)" || bad "no request after it was up"
read -r d2 b2 < <(h2counts "$D/h2b.out")
read -r d1 b1 < <(h2counts "$D/h1b.out")
[ $((b1 + b2)) -eq 0 ] && ok "web, a backend out by its probes: 0 of $((d1 + d2)) requests failed" ||
  bad "web, a backend out by its probes: $((b1 + b2)) of $((d1 + d2)) requests failed"

# --- 3. web: every backend down: fail open ---------------------------------------------
t=$(now_ms)
touch "$D/fail18281" "$D/fail18282" "$D/fail18283"
for b in 18281 18282 18283; do wait_state web "127.0.0.1:$b" down "$t" "$DOWN_MS"; done
panic=$(nsx "$PY" "$E2E/active_health.py" show --sock "$D/proxy.sock" --cluster web |
  $PY -c 'import json,sys; print(json.load(sys.stdin)["health_check"]["panic"])')
codes=$(for _ in $(seq 30); do nsx curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:18280/; done |
  sort | uniq -c | tr -s ' \n' ' ')
[ "$panic" = "True" ] && [ "$codes" = " 30 200 " ] &&
  ok "every backend down by its probes: the proxy fails open (panic $panic; 30 requests:$codes)" ||
  bad "all down: panic $panic, 30 requests:$codes"
t=$(now_ms)
rm -f "$D/fail18281" "$D/fail18282" "$D/fail18283"
for b in 18281 18282 18283; do wait_state web "127.0.0.1:$b" up "$t" "$UP_MS"; done

# --- 4. grpc: NOT_SERVING, then a stopped server --------------------------------------
nsx "$PY" "$E2E/active_health.py" grpc-client --target 127.0.0.1:18280 --threads 4 \
  --max-seconds 60 --stop-file "$D/grpc.stop" --out "$D/grpc.json" > "$D/grpc-client.log" 2>&1 &
GC=$!
sleep 1.5
t=$(now_ms)
echo NOT_SERVING > "$D/g1.status"
wait_state grpc 127.0.0.1:50261 down "$t" "$DOWN_MS"
t_down=$(now_ms)
nsx "$PY" "$E2E/active_health.py" show --sock "$D/proxy.sock" --cluster grpc |
  grep -q '"last_error": "NOT_SERVING"' && ok "the API says why: last_error NOT_SERVING" ||
  bad "last_error of the NOT_SERVING backend"
sleep 2
n=$(calls_after g1 "$(ms_to_s $((t_down + 100)))")
others=$(calls_after g2 "$(ms_to_s $((t_down + 100)))")
[ "$n" -eq 0 ] && [ "$others" -gt 0 ] &&
  ok "a NOT_SERVING gRPC backend takes no call ($others went to the other meanwhile)" ||
  bad "the NOT_SERVING backend took $n calls (the other: $others)"
t=$(now_ms)
rm -f "$D/g1.status"
wait_state grpc 127.0.0.1:50261 up "$t" "$UP_MS"
sleep 1.5
g2pid=$(for p in $(ip netns pids "$NS"); do
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "--listen 127.0.0.1:50262" &&
    echo "$p"; done | head -1)
t_kill=$(now_ms)
kill -"${GRPC_STOP_SIGNAL:-TERM}" "$g2pid"
wait_state grpc 127.0.0.1:50262 down "$t_kill" "$DOWN_MS"
for _ in $(seq 50); do kill -0 "$g2pid" 2>/dev/null || break; sleep 0.1; done
grpc_start g2 50262
wait_port 50262 || bad "the gRPC backend restarts"
t_start=$(now_ms)
wait_state grpc 127.0.0.1:50262 up "$t_start" "$UP_MS"
t_up=$(now_ms)
sleep 1.5
touch "$D/grpc.stop"
wait "$GC"
n=$(calls_after g2 "$(ms_to_s "$t_up")")
[ "$n" -gt 0 ] && ok "the restarted gRPC backend takes calls again ($n)" ||
  bad "the restarted gRPC backend got no call"
g=$(cat "$D/grpc.json" 2>/dev/null)
echo "# grpc client: $g"
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); p=int(sys.argv[2])
sys.exit(not (d["calls"] > 500 and d["failed"] * 100 <= d["calls"] * p))' "$g" "$MAX_FAIL_PCT" &&
  ok "grpc, NOT_SERVING then a stopped server: $($PY -c 'import json,sys; d=json.loads(sys.argv[1]); print("%d of %d calls failed" % (d["failed"], d["calls"]))' "$g") (<= $MAX_FAIL_PCT%)" ||
  bad "grpc calls: $g"

# --- the API and the end -----------------------------------------------------------------
j=$(nsx "$PY" "$E2E/active_health.py" show --sock "$D/proxy.sock" --cluster web)
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); h=d["health_check"]; b=d["backends"][0]["active_health"]
sys.exit(not (h["type"] == "http" and h["up"] == 3 and not h["panic"] and b["probes"] > 10
              and b["failures"] >= 3 and b["last_check_ms_ago"] is not None
              and b["last_check_ms_ago"] <= 1500 and b["consecutive_fail"] == 0
              and b["consecutive_ok"] >= 2 and b["last_error"]))' "$j" &&
  ok "GET /v1/clusters/web: health_check and each backend's active_health" ||
  bad "the API's active health: $j"
grep -E "active health" "$D/l7.log" | sed 's/^/#   /' | head -20
kill -0 "$PX" 2>/dev/null && ok "the proxy is still running" || bad "the proxy died"
kill -TERM "$PX" 2>/dev/null
wait "$PX" 2>/dev/null
if grep -q -E "ERROR: AddressSanitizer|runtime error:" "$D/l7.log"; then
  bad "sanitizer report"; grep -m1 -A20 -E "ERROR: AddressSanitizer|runtime error:" "$D/l7.log"
else
  ok "no sanitizer report"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
