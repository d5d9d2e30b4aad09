#!/usr/bin/env bash
# bench_upgrade - how long a binary upgrade of the proxy takes, and what it
# costs the traffic: l7proxy (2 workers) in front of nginx, HTTP/2 (h2c, -m 4)
# and HTTP/1.1 load from h2load the whole time, `lbctl proxy upgrade` every
# 2 s. Prints each upgrade's time (POST /v1/upgrade until the new process
# answers on the admin socket, as lbctl measures it), the median, and the
# requests h2load saw fail (expected: 0).
#
#   tests/bench/bench_upgrade.sh [BUILD_DIR] [UPGRADES]
#
# Private network namespace on loopback; root; about 2 s per upgrade + 4 s.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
N=${2:-5}
NS=benchg$$
D=$(mktemp -d /tmp/portico-bench-upg.XXXXXX)
[ "$(id -u)" -eq 0 ] || { echo "bench_upgrade: needs root (netns)"; exit 77; }
cleanup() {
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
nsx ip link set lo up
cat > "$D/nginx.conf" <<EOC
user root; worker_processes 1; pid $D/nginx.pid; error_log $D/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18081; location / { return 200 "ok\n"; } } }
EOC
cat > "$D/l7.conf" <<EOC
pop = "bench"; host = "upg"; workers = 2; access_log = ""; admin_socket = "$D/proxy.sock";
drain_timeout_ms = 5000;
listeners = ( { address = "127.0.0.1:18080"; } );
clusters = ( { name = "web"; backends = [ "127.0.0.1:18081" ]; } );
routes = ( { path_prefix = "/"; cluster = "web"; } );
EOC
nsx nginx -c "$D/nginx.conf"
nsx "$BUILD/l7proxy/l7proxy" -c "$D/l7.conf" > "$D/l7.log" 2>&1 &
for i in $(seq 50); do [ -S "$D/proxy.sock" ] && break; sleep 0.1; done
dur=$((2 * N + 3))
M=${M:-4}
nsx h2load -c 8 -m "$M" -D "$dur" http://127.0.0.1:18080/ > "$D/h2.out" 2>&1 &
H2=$!
nsx h2load --h1 -c 8 -D "$dur" http://127.0.0.1:18080/ > "$D/h1.out" 2>&1 &
H1=$!
sleep 1.5
times=()
for i in $(seq "$N"); do
  out=$("$BUILD/ctl/lbctl" -p "$D/proxy.sock" proxy upgrade)
  ms=$(echo "$out" | sed -E 's/.* in ([0-9]+) ms.*/\1/')
  echo "upgrade $i: $ms ms"
  times+=("$ms")
  sleep 2
done
wait "$H2" "$H1"
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median upgrade time: $median ms over $N upgrades (min $(printf '%s\n' "${times[@]}" | sort -n | head -1), max $(printf '%s\n' "${times[@]}" | sort -n | tail -1))"
for f in h2 h1; do
  echo "h2load $f: $(grep -E '^requests:' "$D/$f.out")"
  echo "h2load $f: $(grep -E '^finished in' "$D/$f.out")"
done
