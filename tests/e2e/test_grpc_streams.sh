#!/usr/bin/env bash
# End-to-end: long-lived gRPC streams through l7proxy. Short idle timeouts
# on both sides must not cut a quiet bidi stream, connection recycling
# (http2.max_requests) must end connections with a graceful GOAWAY and
# lose no call, and a backend that stops answering must be found by the
# proxy's HTTP/2 PING, not wait forever (tests/grpc/stream_checks.py).
#
#   tests/e2e/test_grpc_streams.sh [BUILD_DIR]     (default: build-asan)
#
# A private network namespace on its loopback; exits 77 without root;
# cleans up on any exit.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build-asan}
NS=grs$$
D=$(mktemp -d /tmp/portico-grpc-streams.XXXXXX)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export PORTICO_GRPC_STUBS_DIR=$D/stubs
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: network namespaces need root"
  exit 77
fi
cleanup() {
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
nsx ip link set lo up

cat > "$D/proxy.conf" <<EOC
pop = "t"; host = "grpc"; workers = 1; access_log = "$D/access.log";
listeners = ( { address = "127.0.0.1:18081"; } );
client = { idle_timeout_ms = 1000; };
http2 = { max_requests = 5; ping_interval_ms = 60000; };
clusters = ( { name = "grpc"; protocol = "h2c"; backends = [ "127.0.0.1:50051" ];
               idle_timeout_ms = 1000; ping_interval_ms = 500; ping_timeout_ms = 1000; } );
routes = ( { path_prefix = "/"; cluster = "grpc"; } );
EOC
# The proxy PINGs its backend every 500 ms here; gRPC servers allow one
# PING per 5 minutes without data by default (the proxy's default interval).
nsx /usr/bin/python3 "$REPO/deploy/grpc/interop_server.py" --listen 127.0.0.1:50051 \
  --permit-pings-ms 100 > "$D/server.log" 2>&1 &
nsx "$BUILD/l7proxy/l7proxy" -c "$D/proxy.conf" > "$D/proxy.log" 2>&1 &
for _ in $(seq 100); do
  nsx /usr/bin/python3 "$REPO/tests/grpc/interop_client.py" --target 127.0.0.1:18081 \
    --cases health --timeout 2 > /dev/null 2>&1 && break
  sleep 0.2
done
server=$(for p in $(ip netns pids "$NS"); do
  grep -q interop_server "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done | head -1)
out=$(nsx timeout 120 /usr/bin/python3 "$REPO/tests/grpc/stream_checks.py" \
  --target 127.0.0.1:18081 --server-pid "$server" --quiet 4 --max-requests 5 --dead-within 5 2>&1)
echo "$out"
failed=0
grep -q "^3 passed, 0 failed" <<<"$out" || failed=1
proxy=$(for p in $(ip netns pids "$NS"); do
  grep -q l7proxy "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done | head -1)
if [ -z "$proxy" ]; then
  echo "not ok - the proxy died"; failed=1
else
  echo "ok - the proxy is alive"
fi
if grep -qE "ERROR: AddressSanitizer|runtime error:" "$D/proxy.log"; then
  echo "not ok - sanitizer report"; cat "$D/proxy.log"; failed=1
else
  echo "ok - no sanitizer report"
fi
exit "$failed"
