#!/usr/bin/env bash
# Graceful drain and binary upgrade of the proxy, end to end, under load.
#
#  1. Upgrade: while h2load (HTTP/2 and HTTP/1.1), tests/e2e/drain_client.py
#     and gRPC calls (tests/grpc/grpc_load.py: unary calls and a streaming
#     call in flight) run, `lbctl proxy upgrade` twice: the new process
#     takes the listening sockets, the old one drains. No request fails, no
#     connection is refused, the old processes exit, a slow request that
#     the old process held completes. systemd hears READY, WATCHDOG and
#     the new MAINPID (a notify socket of our own).
#  2. A failed upgrade (the config turned bad) keeps the old process
#     serving and says why.
#  2b. A reload that changes the routes (lbctl proxy reload) hands over to
#     a new process with the new config, under load, failing nothing; a
#     reload of a bad file changes nothing and says why.
#  3. SIGTERM under load: no new connection is accepted, requests in
#     flight (HTTP/1.1 with "Connection: close", HTTP/2 after GOAWAY, a
#     gRPC stream) complete, no request the proxy took fails, and the
#     process exits 0 soon after the last one.
#  3b. SIGTERM with connections the kernel completed but the proxy has not
#     accepted (it is at client.max_connections): they are accepted and
#     answered with "Connection: close", not reset by the listener's close.
#  4. The drain deadline: a request longer than drain_timeout_ms is cut
#     and the process exits at the deadline.
#
#   tests/e2e/test_drain.sh [BUILD_DIR]     (default: build-asan)
#
# A private network namespace; exits 77 without root; cleans up on any
# exit. About 40 s.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
PROXY=$BUILD/l7proxy/l7proxy
LBCTL=$BUILD/ctl/lbctl
PY=/usr/bin/python3
export ASAN_OPTIONS=detect_leaks=0
# shellcheck source=tests/e2e/tap.sh
. "$E2E/tap.sh"
# shellcheck source=tests/e2e/netns_lib.sh
. "$E2E/netns_lib.sh"
netns_begin "drn$$" drain

for b in "$PROXY" "$LBCTL"; do
  [ -x "$b" ] || { echo "not ok - no binary at $b"; echo "0 passed, 1 failed"; exit 1; }
done
SOCK=$D/proxy.sock
lbctl() { "$LBCTL" -p "$SOCK" "$@"; }

proxy_pid() {
  curl -s --unix-socket "$SOCK" http://x/v1/status | $PY -c 'import json,sys; print(json.load(sys.stdin)["pid"])'
}
# Wait (at most $2 tenths of a second) for pid $1 to exit.
wait_gone() {
  local i
  for i in $(seq "$2"); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}
jget() { $PY -c "import json,sys; d=json.load(open('$1')); print($2)"; }

cat > "$D/nginx.conf" <<EOF
user root; worker_processes 1; pid $D/nginx.pid; error_log $D/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18081; location / { return 200 "ok\n"; } } }
EOF
write_conf() { # drain_timeout_ms
  cat > "$D/l7.conf" <<EOF
pop = "t"; host = "drain"; workers = 2; access_log = ""; admin_socket = "$SOCK";
drain_timeout_ms = $1;
listeners = ( { address = "127.0.0.1:18080"; } );
clusters = ( { name = "web"; backends = [ "127.0.0.1:18081" ]; },
             { name = "slow"; backends = [ "127.0.0.1:18082" ]; },
             { name = "grpc"; protocol = "h2c"; backends = [ "127.0.0.1:50051" ]; } );
routes = ( { path_prefix = "/sleep"; cluster = "slow"; },
           { path_prefix = "/grpc.testing."; cluster = "grpc"; },
           { path_prefix = "/"; cluster = "web"; } );
EOF
}
write_conf 10000
nsx nginx -c "$D/nginx.conf" || { bad "nginx starts"; cat "$D/nginx.err"; exit 1; }
nsx $PY "$E2E/fake_backend.py" 18082 "$D/slow.log" > /dev/null 2>&1 &
nsx $PY "$REPO/deploy/grpc/interop_server.py" --listen 127.0.0.1:50051 > /dev/null 2>&1 &
# systemd's side of sd_notify: every datagram, one line "PID message"
# (the sender's pid from SCM_CREDENTIALS, as systemd sees it).
nsx $PY -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
with open(sys.argv[2], "a") as f:
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = struct.unpack("iII", anc[0][2][:12])[0] if anc else 0
        f.write("%d %s\n" % (pid, msg.decode().replace("\n", " "))); f.flush()
' "$D/notify.sock" "$D/notify.log" &
wait_port 18081 && wait_port 18082 && wait_port 50051 || { bad "backends start"; exit 1; }
for i in $(seq 50); do [ -S "$D/notify.sock" ] && break; sleep 0.1; done

start_proxy() {
  # Not through nsx (a function: $! would be a subshell, not the proxy).
  # WATCHDOG_PID as systemd sets it: the pid it started (sh execs into
  # the proxy, keeping its pid).
  ip netns exec "$NS" env NOTIFY_SOCKET="$D/notify.sock" WATCHDOG_USEC=1000000 \
    sh -c 'WATCHDOG_PID=$$ exec "$0" -c "$1"' "$PROXY" "${1:-$D/l7.conf}" >> "$D/l7.log" 2>&1 &
  PID=$!
  wait_port 18080
}
start_proxy || { bad "the proxy starts"; cat "$D/l7.log"; exit 1; }
ok "the proxy starts (pid $PID)"

# --- 1. upgrade under load ----------------------------------------------------
nsx h2load -c 8 -D 9 http://127.0.0.1:18080/ > "$D/h2.out" 2>&1 &
H2=$!
nsx h2load --h1 -c 8 -D 9 http://127.0.0.1:18080/ > "$D/h1.out" 2>&1 &
H1=$!
nsx $PY "$E2E/drain_client.py" 127.0.0.1:18080 --h1 2 --h2 2 --duration 9 > "$D/dc.json" &
DC=$!
nsx $PY "$REPO/tests/grpc/grpc_load.py" 127.0.0.1:18080 --duration 9 --threads 2 \
  --stream-count 12 --stream-interval-ms 500 > "$D/grpc.json" 2>"$D/grpc.err" &
GL=$!
sleep 2
nsx curl -s -o "$D/slow1.out" -w '%{http_code}' "http://127.0.0.1:18080/sleep?s=2" > "$D/slow1.code" &
SLOW=$!
sleep 0.3
PID0=$(proxy_pid)
out=$(lbctl proxy upgrade 2>&1); rc=$?
check "lbctl proxy upgrade succeeds under load ($out)" [ "$rc" -eq 0 ]
PID1=$(proxy_pid)
if [ -n "$PID1" ] && [ "$PID1" != "$PID0" ]; then
  ok "the socket answers from the new process ($PID0 -> $PID1)"
else
  bad "the socket answers from the new process ($PID0 -> $PID1)"
fi
sleep 2.5
out=$(lbctl proxy upgrade 2>&1); rc=$?
check "a second upgrade succeeds ($out)" [ "$rc" -eq 0 ]
PID2=$(proxy_pid)
wait "$SLOW"
check "a slow request the first process held completed (HTTP $(cat "$D/slow1.code"))" \
  [ "$(cat "$D/slow1.code")" = 200 ]
wait "$H2" "$H1" "$DC" "$GL"
if wait_gone "$PID0" 100 && ! kill -0 "$PID1" 2>/dev/null; then
  ok "the old processes exited"
else
  bad "the old processes exited"
fi
# h2load over HTTP/2 may count as "errored" a request it had queued when
# the GOAWAY came: nghttp2 then refuses to send it (the proxy never saw
# it), and h2load does not retry. At most one per connection and GOAWAY;
# drain_client.py below tells the two apart and must see nothing failed.
for f in h2 h1; do
  line=$(grep -E "^requests:" "$D/$f.out")
  codes=$(grep -E "^status codes:" "$D/$f.out")
  failed=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  errored=$(echo "$line" | sed -E 's/.* ([0-9]+) errored.*/\1/')
  succeeded=$(echo "$line" | sed -E 's/.* ([0-9]+) succeeded.*/\1/')
  limit=0
  [ "$f" = h2 ] && limit=16
  if [ "${failed:-1}" -le "$limit" ] && [ "${failed:-1}" = "${errored:-x}" ] &&
    [ "${succeeded:-0}" -gt 1000 ] && [[ $codes =~ ,\ 0\ 3xx,\ 0\ 4xx,\ 0\ 5xx ]]; then
    ok "h2load $f: no failed request during two upgrades, every response 2xx ($line)"
  else
    bad "h2load $f: no failed request during two upgrades ($line; $codes)"
  fi
done
if [ "$(jget "$D/dc.json" "d['h1']['failed']+d['h2']['failed']+d['h1']['refused']+d['h2']['refused']")" = 0 ] \
  && [ "$(jget "$D/dc.json" "d['h1']['ok']*d['h2']['ok']")" -gt 0 ]; then
  ok "drain_client: nothing failed, nothing refused ($(cat "$D/dc.json"))"
else
  bad "drain_client: nothing failed, nothing refused ($(cat "$D/dc.json"))"
fi
if [ "$(jget "$D/dc.json" "d['h2']['goaway']")" -ge 2 ] \
  && [ "$(jget "$D/dc.json" "d['h1']['closed_by_server']")" -ge 2 ]; then
  ok "drain_client: HTTP/2 clients saw GOAWAY, HTTP/1.1 ones Connection: close"
else
  bad "drain_client: HTTP/2 clients saw GOAWAY, HTTP/1.1 ones Connection: close"
fi
if [ "$(jget "$D/grpc.json" "d['unary_failed']+d['unary_unavailable']")" = 0 ] \
  && [ "$(jget "$D/grpc.json" "d['unary_ok']")" -gt 50 ] \
  && [ "$(jget "$D/grpc.json" "d['stream_status']")" = OK ] \
  && [ "$(jget "$D/grpc.json" "d['stream_responses']")" = 12 ]; then
  ok "gRPC: no unary call failed, the stream in flight finished OK ($(cat "$D/grpc.json"))"
else
  bad "gRPC: no unary call failed, the stream in flight finished OK ($(cat "$D/grpc.json"))"
fi
n=$(nsx ss -Hltn 'sport = :18080' | wc -l)
check "the same 2 listening sockets, held by the new process only ($n)" [ "$n" -eq 2 ]
if grep -q "^$PID0 READY=1" "$D/notify.log" && grep -q "^$PID0 WATCHDOG=1" "$D/notify.log" \
  && grep -q "^$PID2 MAINPID=$PID2 READY=1" "$D/notify.log" \
  && grep -q "^$PID2 WATCHDOG=1" "$D/notify.log"; then
  ok "systemd heard READY and WATCHDOG, and after the upgrades MAINPID, READY and WATCHDOG from the new process"
else
  bad "systemd heard READY and WATCHDOG, and after the upgrades MAINPID, READY and WATCHDOG from the new process"
  sed 's/^/# /' "$D/notify.log" | sort | uniq -c | head
fi

# --- 2. a failed upgrade --------------------------------------------------------
cp "$D/l7.conf" "$D/l7.conf.good"
echo "this is not a config" >> "$D/l7.conf"
out=$(lbctl proxy upgrade 2>&1); rc=$?
cp "$D/l7.conf.good" "$D/l7.conf"
if [ "$rc" -ne 0 ] && echo "$out" | grep -q "exited before it served"; then
  ok "an upgrade to a bad config fails and says so ($out)"
else
  bad "an upgrade to a bad config fails and says so ($out)"
fi
if [ "$(proxy_pid)" = "$PID2" ] && [ "$(nsx curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18080/)" = 200 ]; then
  ok "... and the old process keeps serving"
else
  bad "... and the old process keeps serving"
fi

# --- 2b. a reload that changes routes ---------------------------------------------
nsx $PY "$E2E/drain_client.py" 127.0.0.1:18080 --h1 2 --h2 2 --duration 3 > "$D/dc3.json" &
DC=$!
sleep 0.5
sed -i 's|routes = ( { path_prefix = "/sleep"; cluster = "slow"; },|routes = ( { path_prefix = "/moved"; cluster = "slow"; }, { path_prefix = "/sleep"; cluster = "slow"; },|' "$D/l7.conf"
out=$(lbctl proxy reload 2>&1); rc=$?
check "a reload that changes the routes is applied by a handover ($out)" \
  [ "$rc" -eq 0 ]
PID3=$(proxy_pid)
n=$(curl -s --unix-socket "$SOCK" http://x/v1/routes | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["routes"]))')
if [ "$n" = 4 ] && [ "$PID3" != "$PID2" ]; then
  ok "the new process serves the new routes ($n routes, pid $PID2 -> $PID3)"
else
  bad "the new process serves the new routes ($n routes, pid $PID2 -> $PID3)"
fi
wait "$DC"
check "nothing failed or was refused during the reload ($(cat "$D/dc3.json"))" \
  [ "$(jget "$D/dc3.json" "d['h1']['failed']+d['h2']['failed']+d['h1']['refused']+d['h2']['refused']")" = 0 ]
cp "$D/l7.conf" "$D/l7.conf.good"
sed -i 's|cluster = "slow"; }, { path_prefix = "/sleep"|cluster = "nosuch"; }, { path_prefix = "/sleep"|' "$D/l7.conf"
out=$(lbctl proxy reload 2>&1); rc=$?
cp "$D/l7.conf.good" "$D/l7.conf"
if [ "$rc" -ne 0 ] && echo "$out" | grep -q "nosuch"; then
  ok "a reload of a bad config is refused and says why ($out)"
else
  bad "a reload of a bad config is refused and says why ($out)"
fi
check "... and changes nothing" [ "$(proxy_pid)" = "$PID3" ]
PID2=$PID3

# --- 3. SIGTERM under load ------------------------------------------------------
nsx $PY "$E2E/drain_client.py" 127.0.0.1:18080 --h1 2 --h2 2 --duration 6 > "$D/dc2.json" &
DC=$!
nsx $PY "$REPO/tests/grpc/grpc_load.py" 127.0.0.1:18080 --duration 0.1 --threads 0 \
  --stream-count 5 --stream-interval-ms 400 > "$D/grpc2.json" 2>"$D/grpc2.err" &
GL=$!
nsx curl -s -D "$D/slow2.head" -o /dev/null -w '%{http_code}' "http://127.0.0.1:18080/sleep?s=2" \
  > "$D/slow2.code" &
S1=$!
nsx curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' \
  "http://127.0.0.1:18080/sleep?s=2" > "$D/slow3.code" &
S2=$!
sleep 1
t0=$(date +%s%N)
kill -TERM "$PID2"
sleep 0.3
nsx curl -s -m 2 -o /dev/null http://127.0.0.1:18080/; rc=$?
check "after SIGTERM a new connection is refused (curl exit $rc)" [ "$rc" -eq 7 ]
wait "$S1" "$S2" "$GL"
if [ "$(cat "$D/slow2.code")" = 200 ] && grep -qi "^connection: close" "$D/slow2.head"; then
  ok "an HTTP/1.1 request in flight completed with Connection: close"
else
  bad "an HTTP/1.1 request in flight completed with Connection: close"
fi
check "an HTTP/2 request in flight completed (HTTP $(cat "$D/slow3.code"))" \
  [ "$(cat "$D/slow3.code")" = 200 ]
if [ "$(jget "$D/grpc2.json" "d['stream_status']")" = OK ] \
  && [ "$(jget "$D/grpc2.json" "d['stream_responses']")" = 5 ]; then
  ok "a gRPC stream in flight completed ($(cat "$D/grpc2.json"))"
else
  bad "a gRPC stream in flight completed ($(cat "$D/grpc2.json"))"
fi
gone=0
wait_gone "$PID2" 100 && gone=1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$gone" = 1 ] && [ "$ms" -lt 8000 ]; then
  ok "the proxy exited ${ms} ms after SIGTERM, before the 10 s deadline"
else
  bad "the proxy exited ${ms} ms after SIGTERM, before the 10 s deadline"
fi
wait "$DC"
if [ "$(jget "$D/dc2.json" "d['h1']['failed']+d['h2']['failed']")" = 0 ] \
  && [ "$(jget "$D/dc2.json" "d['h1']['ok']*d['h2']['ok']")" -gt 0 ] \
  && [ "$(jget "$D/dc2.json" "d['h1']['refused']+d['h2']['refused']")" -gt 0 ]; then
  ok "drain_client: no request the proxy took failed ($(cat "$D/dc2.json"))"
else
  bad "drain_client: no request the proxy took failed ($(cat "$D/dc2.json"))"
fi
check "systemd heard STOPPING" grep -q "^$PID2 STOPPING=1" "$D/notify.log"

# --- 3b. SIGTERM with connections queued, not accepted ----------------------------
# One worker capped at 2 connections: 2 idle keepalive connections hold the
# cap, 4 more wait in the listen queue with a request sent.
sed -e 's/workers = 2;/workers = 1;/' -e 's/^drain_timeout_ms = .*/drain_timeout_ms = 10000;\
client = { max_connections = 2; };/' "$D/l7.conf" > "$D/l7b.conf"
start_proxy "$D/l7b.conf" || { bad "the proxy starts capped at 2 connections"; exit 1; }
rm -f "$D/bl.ready"
nsx $PY "$E2E/backlog_client.py" 127.0.0.1:18080 2 4 "$D/bl.ready" > "$D/bl.json" 2> "$D/bl.err" &
BL=$!
for i in $(seq 100); do [ -e "$D/bl.ready" ] && break; sleep 0.1; done
t0=$(date +%s%N)
kill -TERM "$PID"
wait "$BL"
wait "$PID"; rc=$?  # ours (not an upgrade's): reaped here, at the latest at the 10 s deadline
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$(jget "$D/bl.json" "d['idle_ok']")" = 2 ] \
  && [ "$(jget "$D/bl.json" "d['answered_before']")" = 0 ]; then
  ok "2 idle connections hold the cap, 4 more wait unanswered in the queue"
else
  bad "2 idle connections hold the cap, 4 more wait unanswered in the queue ($(cat "$D/bl.json" "$D/bl.err"))"
fi
if [ "$(jget "$D/bl.json" "d['queued']")" = "[200, 200, 200, 200]" ] \
  && [ "$(jget "$D/bl.json" "d['queued_close']")" = 4 ]; then
  ok "after SIGTERM the queued connections are accepted and answered with Connection: close"
else
  bad "after SIGTERM the queued connections are accepted and answered with Connection: close ($(cat "$D/bl.json" "$D/bl.err"))"
fi
check "... the idle ones are closed ($(jget "$D/bl.json" "d['idle_closed']") of 2)" \
  [ "$(jget "$D/bl.json" "d['idle_closed']")" = 2 ]
check "... and the proxy exits 0 once they are done, before the deadline (${ms} ms, status $rc)" \
  [ $((rc == 0 && ms < 8000)) = 1 ]

# --- 4. the drain deadline ------------------------------------------------------
write_conf 1000
start_proxy || { bad "the proxy starts again"; exit 1; }
nsx curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:18080/sleep?s=8" > "$D/slow4.code" &
S1=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$PID"
wait_gone "$PID" 60
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$S1"
if [ "$ms" -ge 900 ] && [ "$ms" -lt 4000 ] && [ "$(cat "$D/slow4.code")" != 200 ]; then
  ok "a request past drain_timeout_ms (1 s) is cut and the proxy exits (${ms} ms)"
else
  bad "a request past drain_timeout_ms (1 s) is cut and the proxy exits (${ms} ms)"
fi
wait "$PID" 2>/dev/null
check "the proxy's exit status is 0 after a drain" [ "$?" -eq 0 ]
if grep -q "Sanitizer" "$D/l7.log"; then bad "no sanitizer report"; else ok "no sanitizer report"; fi
grep -E "upgrade|drain|took over" "$D/l7.log" | sed 's/^/# /' | head -20
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
