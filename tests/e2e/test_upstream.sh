#!/usr/bin/env bash
# Upstream updates without reloads, end to end: the proxy (two workers) in
# front of three nginx backends, HTTP/2 and HTTP/1.1 load from h2load the
# whole time, and 100 backend-set updates a second for 10 s through the
# admin API (adds, removes, drains, weight changes, whole sets). Then:
#  - no request failed, and the backend that came and went served some;
#  - gRPC calls (grpcio) through a second cluster churned at 20/s fail
#    none, and a server stream in flight finishes;
#  - after a removal returns, that backend gets no new request and the
#    proxy's pooled connections to it close;
#  - lbctl upstream shows and changes the sets (tables and --json);
#  - bad updates (unknown cluster, bad address, weight, stale version,
#    malformed JSON) get 4xx naming the field and change nothing.
#
#   tests/e2e/test_upstream.sh [BUILD_DIR]     (default: build-asan)
#
# A private network namespace (fixed ports on its loopback); exits 77
# without root; cleans up on any exit. About 25 s.
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
netns_begin "ups$$" upstream

for b in "$PROXY" "$LBCTL"; do
  [ -x "$b" ] || { echo "not ok - no binary at $b"; echo "0 passed, 1 failed"; exit 1; }
done


cat > "$D/nginx.conf" <<EOF
user root; worker_processes 1; pid $D/nginx.pid; error_log $D/nginx.err;
events { worker_connections 4096; }
http {
  log_format t '\$msec \$server_port \$status';
  keepalive_requests 100000;
EOF
for port in 18081 18082 18083; do
  cat >> "$D/nginx.conf" <<EOF
  server { listen 127.0.0.1:$port; access_log $D/be$port.log t;
           location / { return 200 "be$port\n"; } }
EOF
done
echo "}" >> "$D/nginx.conf"
cat > "$D/l7.conf" <<EOF
pop = "t"; host = "ups"; workers = 2; access_log = ""; admin_socket = "$D/proxy.sock";
listeners = ( { address = "127.0.0.1:18080"; } );
clusters = ( { name = "web"; backends = [ "127.0.0.1:18081", "127.0.0.1:18082" ];
               idle_timeout_ms = 60000; },
             { name = "grpc"; protocol = "h2c";
               backends = [ "127.0.0.1:50061", "127.0.0.1:50062" ]; } );
routes = ( { path_prefix = "/grpc.testing."; cluster = "grpc"; },
           { path_prefix = "/"; cluster = "web"; } );
EOF
nsx nginx -c "$D/nginx.conf" || { bad "nginx starts"; cat "$D/nginx.err"; exit 1; }
for port in 50061 50062 50063; do
  nsx $PY "$REPO/deploy/grpc/interop_server.py" --listen "127.0.0.1:$port" > /dev/null 2>&1 &
done
for port in 50061 50062 50063; do wait_port $port || { bad "gRPC backend $port starts"; exit 1; }; done
# Not through nsx (a function: $! would be a subshell, and the SIGTERM
# at the end would never reach the proxy).
ip netns exec "$NS" "$PROXY" -c "$D/l7.conf" > "$D/l7.log" 2>&1 &
PX=$!
wait_port 18080 || { bad "proxy listens"; cat "$D/l7.log"; exit 1; }
lbctl() { nsx "$LBCTL" -p "$D/proxy.sock" "$@"; }
api() { # api METHOD PATH [BODY] -> "STATUS BODY"
  nsx curl -s -o "$D/api.out" -w '%{http_code}' --unix-socket "$D/proxy.sock" -X "$1" \
    ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "http://admin$2"
  echo " $(cat "$D/api.out")"
}
version() { lbctl --json upstream list web | $PY -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }

# --- 100 updates a second under load ------------------------------------------------
nsx h2load -c 8 -m 4 -D 12 http://127.0.0.1:18080/ > "$D/h2.out" 2>&1 &
L1=$!
nsx h2load --h1 -c 4 -D 12 http://127.0.0.1:18080/ > "$D/h1.out" 2>&1 &
L2=$!
# gRPC through the same proxy, its cluster churned too: unary calls on two
# channels and a server stream of 20 responses, 400 ms apart.
nsx $PY "$REPO/tests/grpc/grpc_load.py" 127.0.0.1:18080 --duration 11 --threads 2 \
  --stream-count 20 --stream-interval-ms 400 > "$D/grpc.json" 2> "$D/grpc.err" &
L3=$!
sleep 1
nsx "$PY" "$E2E/upstream_churn.py" "$D/proxy.sock" grpc --rate 20 --seconds 10 \
  --pool 127.0.0.1:50061,127.0.0.1:50062 --spare 127.0.0.1:50063 > "$D/churn_grpc.out" 2>&1 &
L4=$!
nsx "$PY" "$E2E/upstream_churn.py" "$D/proxy.sock" web --rate 100 --seconds 10 \
  --pool 127.0.0.1:18081,127.0.0.1:18082 --spare 127.0.0.1:18083 > "$D/churn.out" 2>&1
wait "$L1" "$L2" "$L3" "$L4"
g=$(cat "$D/grpc.json")
echo "# grpc: $g; churn: $(cat "$D/churn_grpc.out")"
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["unary_failed"] + d["unary_unavailable"] == 0 and d["unary_ok"] > 500 and d["stream_status"] == "OK" and d["stream_responses"] == 20))' "$g" &&
  ok "gRPC through the updates (its own cluster churned at 20/s): no failed call, the stream finished" ||
  bad "gRPC through the updates: $g"
churn=$(cat "$D/churn.out")
echo "# churn: $churn"
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["updates"] >= 900 and d["refused"] == 0))' "$churn" &&
  ok "at least 900 updates in 10 s, none refused: $churn" || bad "updates under load: $churn"
for f in h2 h1; do
  req=$(grep '^requests:' "$D/$f.out")
  codes=$(grep '^status codes:' "$D/$f.out")
  echo "# $f: $req; $codes"
  n=0
  [[ $req =~ ([0-9]+)\ succeeded,\ 0\ failed,\ 0\ errored ]] && n=${BASH_REMATCH[1]}
  if [ "$n" -gt 1000 ] && [[ $codes =~ ,\ 0\ 3xx,\ 0\ 4xx,\ 0\ 5xx ]]; then
    ok "$f load through 1000 updates: no failed request ($n succeeded)"
  else
    bad "$f load through the updates: $req; $codes"
  fi
done
n3=$(wc -l < "$D/be18083.log")
[ "$n3" -gt 0 ] && ok "the backend that came and went served $n3 requests" ||
  bad "the added backend served nothing"

# --- removal: no new requests, pooled connections close ----------------------------
lbctl upstream add web 127.0.0.1:18081 >/dev/null
lbctl upstream undrain web 127.0.0.1:18081 >/dev/null
nsx h2load --h1 -c 4 -n 2000 http://127.0.0.1:18080/ > /dev/null 2>&1
if lbctl upstream remove web 127.0.0.1:18081 > "$D/rm.out"; then
  t_removed=$(date +%s.%N)
  ok "lbctl upstream remove: $(cat "$D/rm.out")"
else
  t_removed=$(date +%s.%N)
  bad "lbctl upstream remove: $(cat "$D/rm.out")"
fi
out=$(nsx h2load --h1 -c 4 -n 2000 http://127.0.0.1:18080/ 2>&1 | grep '^status codes:')
late=$(awk -v t="$t_removed" '$1 > t' "$D/be18081.log" | wc -l)
[ "$late" -eq 0 ] && ok "no request reached the removed backend after the removal ($out)" ||
  bad "$late requests reached 127.0.0.1:18081 after its removal"
sleep 0.5
conns=$(nsx ss -Htn state established dst 127.0.0.1:18081 | wc -l)
others=$(nsx ss -Htn state established dst 127.0.0.1:18082 | wc -l)
[ "$conns" -eq 0 ] && [ "$others" -gt 0 ] &&
  ok "the proxy's pooled connections to the removed backend closed ($others kept to the other)" ||
  bad "connections to the removed backend: $conns open (to the other: $others)"

# --- lbctl ---------------------------------------------------------------------------------
table=$(lbctl upstream list)
echo "$table" | sed 's/^/#   /'
grep -q '127.0.0.1:18082' <<<"$table" && ! grep -q '127.0.0.1:18081' <<<"$table" &&
  ok "lbctl upstream list shows the set" || bad "lbctl upstream list: $table"
cat > "$D/set.json" <<EOF
{"version": 1000000, "backends": [{"address": "127.0.0.1:18081", "weight": 1},
 {"address": "127.0.0.1:18082", "weight": 3, "drain": true}]}
EOF
lbctl upstream set web -f "$D/set.json" > "$D/set.out" 2>&1
j=$(lbctl --json upstream list web)
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); b={x["address"]: x for x in d["backends"]}
sys.exit(not (d["version"] == 1000000 and d["source"] == "api" and b["127.0.0.1:18082"]["drain"]
              and b["127.0.0.1:18082"]["weight"] == 3 and len(b) == 2))' "$j" &&
  ok "lbctl upstream set -f FILE: $(cat "$D/set.out")" || bad "lbctl upstream set: $(cat "$D/set.out"); $j"
out=$(nsx h2load --h1 -c 2 -n 200 http://127.0.0.1:18080/ 2>&1 | grep '^status codes:')
before=$(grep -c . "$D/be18082.log")
nsx curl -s http://127.0.0.1:18080/ > /dev/null
after=$(grep -c . "$D/be18082.log")
[ "$before" = "$after" ] && [[ $out =~ 200\ 2xx ]] &&
  ok "a drained backend takes no new request ($out)" || bad "drain: $out, drained backend $before -> $after"
st=$(lbctl proxy status)
grep -q '^upstream_updates' <<<"$st" && grep -q '^version' <<<"$st" &&
  ok "lbctl proxy status" || bad "lbctl proxy status: $st"

# --- bad updates change nothing --------------------------------------------------------
v0=$(version)
while IFS='|' read -r method path body want what; do
  got=$(api "$method" "$path" "$body")
  if [ "${got%% *}" = "$want" ] && grep -qF -- "$what" <<<"$got"; then
    ok "$method $path $body -> $got"
  else
    bad "$method $path $body: expected $want naming \"$what\", got $got"
  fi
done <<'EOF'
PUT|/v1/clusters/nope/backends|{"version": 9999999, "backends": []}|404|no such cluster
PUT|/v1/clusters/web/backends|{"version": 9999999, "backends": ["10.0.0.300:80"]}|400|backends[0].address
PUT|/v1/clusters/web/backends|{"version": 9999999, "backends": [{"address": "127.0.0.1:1", "weight": -1}]}|400|backends[0].weight
PUT|/v1/clusters/web/backends|{"version": 9999999, "backends": [{"address": "127.0.0.1:1", "wieght": 2}]}|400|backends[0]: unknown field
PUT|/v1/clusters/web/backends|{"version": 1, "backends": []}|409|not newer
PUT|/v1/clusters/web/backends|{"backends": []}|400|version: required
PUT|/v1/clusters/web/backends|{"version": 9999999, "backends": ["127.0.0.1:1", "127.0.0.1:1"]}|400|listed twice
PUT|/v1/clusters/web/backends|{"version": 9999999, "backends": [|400|JSON
POST|/v1/clusters/web/backends|{"address": "127.0.0.1:1", "weight": 0}|400|weight
POST|/v1/clusters/web/backends|{"address": "nohost"}|400|address
DELETE|/v1/clusters/web/backends|{"address": "127.0.0.1:9"}|404|not in cluster
EOF
[ "$(version)" = "$v0" ] && ok "the set is unchanged after the bad updates (version $v0)" ||
  bad "a bad update changed the set: $v0 -> $(version)"

kill -0 "$PX" 2>/dev/null && ok "the proxy is still running" || bad "the proxy died"
kill -TERM "$PX" 2>/dev/null
wait "$PX" 2>/dev/null
check "the proxy drains and exits 0 on SIGTERM" [ "$?" -eq 0 ]
if grep -q -E "ERROR: AddressSanitizer|runtime error:" "$D/l7.log"; then
  bad "sanitizer report"; grep -m1 -A20 -E "ERROR: AddressSanitizer|runtime error:" "$D/l7.log"
else
  ok "no sanitizer report"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
