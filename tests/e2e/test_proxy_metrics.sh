#!/usr/bin/env bash
# The proxy's Prometheus metrics, end to end: known traffic goes through a
# proxy in a private namespace (HTTP/2 and HTTP/1.1 from h2load, 404s, gRPC
# unary calls from grpcio, TLS 1.3 and 1.2 handshakes with and without a
# client certificate), then:
#  - `promtool check metrics` passes on /metrics from the admin socket and
#    from the TCP listener (metrics_listen), which serves nothing else;
#  - the counters match what was sent: requests by route and status class,
#    latency histogram counts, gRPC codes and the per-method histogram,
#    per-backend requests, TLS handshakes by version, client identities;
#  - a flood of made-up gRPC method names stays in "other";
#  - the access log in JSON (access_log_format) is one valid object per
#    request, whatever bytes the request line had, and SIGUSR1 reopens it
#    (logrotate's rename-then-signal) without losing a line.
#
#   tests/e2e/test_proxy_metrics.sh [BUILD_DIR]     (default: build-asan)
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
PROXY=$BUILD/l7proxy/l7proxy
PY=/usr/bin/python3
export ASAN_OPTIONS=detect_leaks=0
# shellcheck source=tests/e2e/tap.sh
. "$E2E/tap.sh"
# shellcheck source=tests/e2e/netns_lib.sh
. "$E2E/netns_lib.sh"
netns_begin "pmet$$" pmet

command -v promtool > /dev/null || { echo "not ok - promtool (Debian package prometheus)"; echo "0 passed, 1 failed"; exit 1; }
[ -x "$PROXY" ] || { echo "not ok - no binary at $PROXY"; echo "0 passed, 1 failed"; exit 1; }

# A CA, a server certificate and a client certificate (CN=svc-a).
(
  cd "$D" || exit 1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=test CA" -keyout ca.key -out ca.pem
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=metrics.test" \
    -keyout srv.key -out srv.csr
  printf 'subjectAltName=DNS:metrics.test\n' > srv.ext
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile srv.ext -out srv.pem
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=svc-a" \
    -keyout cli.key -out cli.csr
  openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out cli.pem
) > /dev/null 2>&1 || { bad "test certificates"; exit 1; }

cat > "$D/nginx.conf" <<EOF
user root; worker_processes 1; pid $D/nginx.pid; error_log $D/nginx.err;
events { worker_connections 1024; }
http { access_log off;
  server { listen 127.0.0.1:18081; location / { return 200 "ok\n"; }
           location /missing { return 404; } } }
EOF
cat > "$D/l7.conf" <<EOF
pop = "t"; host = "pmet"; workers = 2; admin_socket = "$D/proxy.sock";
access_log = "$D/access.log"; access_log_format = "json";
metrics_listen = "127.0.0.1:19102";
listeners = ( { address = "127.0.0.1:18080"; },
              { address = "127.0.0.1:18443"; tls = true; client_auth = "request"; } );
tls = { certificates = ( { certificate = "$D/srv.pem"; key = "$D/srv.key"; } );
        client_ca = "$D/ca.pem"; };
clusters = ( { name = "web"; backends = [ "127.0.0.1:18081" ]; },
             { name = "grpc"; protocol = "h2c"; backends = [ "127.0.0.1:50051" ]; } );
routes = ( { path_prefix = "/grpc.testing."; cluster = "grpc"; },
           { path_prefix = "/"; cluster = "web"; } );
EOF
nsx nginx -c "$D/nginx.conf" || { bad "nginx starts"; exit 1; }
nsx $PY "$REPO/deploy/grpc/interop_server.py" --listen 127.0.0.1:50051 > /dev/null 2>&1 &
ip netns exec "$NS" "$PROXY" -c "$D/l7.conf" > "$D/l7.log" 2>&1 &
PX=$!
wait_port 18081 && wait_port 50051 && wait_port 18080 && wait_port 19102 \
  || { bad "the proxy and its backends start"; cat "$D/l7.log"; exit 1; }

nsx h2load -n 1000 -c 4 http://127.0.0.1:18080/ > "$D/a.out" 2>&1
nsx h2load --h1 -n 500 -c 2 http://127.0.0.1:18080/ >> "$D/a.out" 2>&1
nsx h2load -n 100 -c 1 http://127.0.0.1:18080/missing >> "$D/a.out" 2>&1
c() { nsx curl -s -o /dev/null -w '%{http_code}\n' --cacert "$D/ca.pem" \
  --resolve metrics.test:18443:127.0.0.1 "$@" https://metrics.test:18443/; }
for i in 1 2 3; do c --tlsv1.3 --cert "$D/cli.pem" --key "$D/cli.key"; done > "$D/tls.out"
for i in 1 2; do c --tlsv1.2 --tls-max 1.2; done >> "$D/tls.out"
nsx $PY "$REPO/tests/grpc/grpc_load.py" 127.0.0.1:18080 --duration 1 --threads 1 > "$D/grpc.json"
# Made-up method names: the backend says UNIMPLEMENTED to each.
nsx $PY - > "$D/fake.out" 2>&1 <<EOF
import grpc
ch = grpc.insecure_channel("127.0.0.1:18080", [("grpc.enable_http_proxy", 0)])
n = 0
for i in range(60):
    try:
        ch.unary_unary("/grpc.testing.Fake%d/M" % i)(b"", timeout=5)
    except grpc.RpcError as e:
        n += e.code() == grpc.StatusCode.UNIMPLEMENTED
print(n)
EOF
unary=$($PY -c "import json; print(json.load(open('$D/grpc.json'))['unary_ok'])")
check "the traffic went through (grpc unary $unary, fake methods $(cat "$D/fake.out"))" \
  [ "$(grep -c " 0 failed" "$D/a.out")" -eq 2 ]

curl -s --unix-socket "$D/proxy.sock" http://x/metrics > "$D/m.txt"
nsx curl -s http://127.0.0.1:19102/metrics > "$D/m2.txt"
check "promtool check metrics passes on the admin socket's /metrics" \
  bash -c "promtool check metrics < '$D/m.txt'"
check "promtool check metrics passes on metrics_listen's /metrics" \
  bash -c "promtool check metrics < '$D/m2.txt'"
code=$(nsx curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19102/v1/status)
check "the TCP listener serves /metrics only (/v1/status: $code)" [ "$code" = 404 ]
ctype=$(curl -s -o /dev/null -w '%{content_type}' --unix-socket "$D/proxy.sock" http://x/metrics)
check "content type is the text format 0.0.4 ($ctype)" \
  [ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ]

val() { # metric line prefix (name{labels}) -> value
  awk -v k="$1" 'index($0, k" ") == 1 { print $2 }' "$D/m.txt"
}
expect() { # name{labels} expected
  local got
  got=$(val "$1")
  check "$1 = $2 (got ${got:-nothing})" [ "${got:-x}" = "$2" ]
}
expect 'portico_l7_requests_total{route="*/",cluster="web",code_class="2xx"}' 1505
expect 'portico_l7_requests_total{route="*/",cluster="web",code_class="4xx"}' 100
expect 'portico_l7_request_duration_seconds_count{route="*/",cluster="web"}' 1605
expect 'portico_l7_backend_requests_total{cluster="web",backend="127.0.0.1:18081"}' 1605
expect 'portico_l7_grpc_responses_total{route="*/grpc.testing.",cluster="grpc",grpc_code="OK"}' "$unary"
expect 'portico_l7_grpc_responses_total{route="*/grpc.testing.",cluster="grpc",grpc_code="UNIMPLEMENTED"}' 60
expect 'portico_l7_grpc_method_duration_seconds_count{method="/grpc.testing.TestService/UnaryCall"}' "$unary"
expect 'portico_l7_grpc_method_duration_seconds_count{method="other"}' 60
expect 'portico_l7_grpc_method_errors_total{method="other"}' 60
expect 'portico_l7_tls_handshakes_total{version="TLSv1.3",resumption="full"}' 3
expect 'portico_l7_tls_handshakes_total{version="TLSv1.2",resumption="full"}' 2
expect 'portico_l7_client_identity_requests_total{identity="svc-a"}' 3
expect 'portico_l7_backend_up{cluster="web",backend="127.0.0.1:18081"}' 1
n=$(grep -c '^portico_l7_grpc_method_duration_seconds_count' "$D/m.txt")
check "made-up methods take no series of their own ($n method series)" [ "$n" -eq 2 ]
b=$(awk '/^portico_l7_request_duration_seconds_bucket\{route="\*\/",cluster="web",le="\+Inf"\}/ {print $2}' "$D/m.txt")
check "the +Inf bucket holds every request ($b)" [ "$b" = 1605 ]
# --- the access log ---------------------------------------------------------------
# A request line with a quote, a backslash and raw high bytes in its target.
nsx $PY - <<'PYEOF'
import socket
s = socket.create_connection(("127.0.0.1", 18080))
s.sendall(b'GET /a"b\\c\xff\x80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
s.recv(4096)
PYEOF
sleep 0.3
mv "$D/access.log" "$D/access.log.1"
kill -USR1 "$PX"
sleep 0.3
nsx h2load -n 10 -c 1 http://127.0.0.1:18080/ > /dev/null 2>&1
sleep 0.3
res=$($PY - "$D/access.log.1" "$D/access.log" <<'PYEOF'
import json, sys
def lines(p):
    out = []
    for l in open(p, "rb"):
        out.append(json.loads(l))
    return out
old, new = lines(sys.argv[1]), lines(sys.argv[2])
keys = {"ts", "client", "method", "path", "status", "bytes", "duration_ms", "backend", "id",
        "tls", "client_identity", "proto", "grpc_status", "error"}
assert all(set(o) == keys for o in old + new), "keys"
odd = [o for o in old if o["path"].startswith('/a"b')]
print(len(old), len(new), len(odd), odd[0]["path"] if odd else "-")
PYEOF
)
echo "# access log: $res"
read -r n_old n_new n_odd odd_path <<< "$res"
check "every access-log line before the rotation is a JSON object ($n_old lines)" \
  [ "${n_old:-0}" -ge 1800 ]
check "the odd request line is logged as valid JSON ($odd_path)" [ "${n_odd:-0}" = 1 ]
check "after SIGUSR1 the reopened file has the 10 new requests ($n_new)" [ "${n_new:-0}" = 10 ]

if grep -q "Sanitizer" "$D/l7.log"; then bad "no sanitizer report"; else ok "no sanitizer report"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
