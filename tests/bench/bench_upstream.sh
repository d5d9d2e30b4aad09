#!/usr/bin/env bash
# bench_upstream - what a backend-set update costs the proxy: the request
# rate with 100 updates a second against none, the time and proxy CPU per
# update, and the proxy's memory before and after 10,000 updates.
#
#   tests/bench/bench_upstream.sh [BUILD_DIR] [RUNS]
#
# l7proxy (2 workers) in front of three nginx backends in a private network
# namespace on loopback; load: h2load -c 8 -m 4 (h2c) for 5 s per round;
# updates: tests/e2e/upstream_churn.py (adds, removes, drains, weights,
# whole sets) on the admin socket. Medians of RUNS rounds, alternating
# "no updates" and "100 updates/s". Root; about 15 s per run.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
RUNS=${2:-3}
NS=benchu$$
D=$(mktemp -d /tmp/portico-bench-ups.XXXXXX)
PY=/usr/bin/python3
[ "$(id -u)" -eq 0 ] || { echo "bench_upstream: needs root (netns)"; exit 77; }
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
{
  echo "user root; worker_processes 1; pid $D/nginx.pid; error_log $D/nginx.err;"
  echo "events { worker_connections 4096; } http { access_log off; keepalive_requests 1000000;"
  for port in 18081 18082 18083; do
    echo "server { listen 127.0.0.1:$port; location / { return 200 \"be$port\n\"; } }"
  done
  echo "}"
} > "$D/nginx.conf"
cat > "$D/l7.conf" <<EOC
pop = "bench"; host = "ups"; workers = 2; access_log = ""; admin_socket = "$D/proxy.sock";
listeners = ( { address = "127.0.0.1:18080"; } );
clusters = ( { name = "web"; backends = [ "127.0.0.1:18081", "127.0.0.1:18082" ]; } );
routes = ( { path_prefix = "/"; cluster = "web"; } );
EOC
nsx nginx -c "$D/nginx.conf"
nsx "$BUILD/l7proxy/l7proxy" -c "$D/l7.conf" 2>"$D/l7.err" &
sleep 0.7
PID=$(nsx pgrep -f "l7proxy -c $D/l7.conf")
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$PID/status"; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
churn() { nsx "$PY" "$REPO/tests/e2e/upstream_churn.py" "$D/proxy.sock" web \
  --pool 127.0.0.1:18081,127.0.0.1:18082 --spare 127.0.0.1:18083 "$@"; }
rate() { nsx h2load -c 8 -m 4 -D 5 http://127.0.0.1:18080/ 2>&1 | awk '/^finished in/{print int($4)}'; }

base=() with=()
for ((i = 0; i < RUNS; i++)); do
  base+=("$(rate)")
  churn --rate 100 --seconds 6 > "$D/churn.out" &
  c=$!
  with+=("$(rate)")
  wait "$c"
done
# 10,000 updates back to back: wall time and proxy CPU per update, memory.
nsx h2load -c 4 -n 20000 http://127.0.0.1:18080/ > /dev/null 2>&1
rss0=$(rss)
t0=$(ticks)
s0=$(date +%s.%N)
churn --rate 100000 --seconds 600 --count 10000 > "$D/many.out"
s1=$(date +%s.%N)
t1=$(ticks)
nsx h2load -c 4 -n 20000 http://127.0.0.1:18080/ > /dev/null 2>&1
rss1=$(rss)
echo "# l7proxy 2 workers, 3 nginx backends, h2load -c 8 -m 4 (h2c) for 5 s, $RUNS rounds (median)"
printf '%-34s %s\n' "requests/s, no updates" "$(printf '%s\n' "${base[@]}" | median)"
printf '%-34s %s\n' "requests/s, 100 updates/s" "$(printf '%s\n' "${with[@]}" | median)"
echo "# 10,000 updates back to back: $(cat "$D/many.out")"
awk -v s0="$s0" -v s1="$s1" -v t="$((t1 - t0))" -v hz="$HZ" 'BEGIN{
  printf "%-34s %.0f\n", "update round trip (us, mean)", (s1 - s0) * 1e6 / 10000
  printf "%-34s %.1f\n", "proxy CPU per update (us)", t * 1e6 / hz / 10000 }'
printf '%-34s %s -> %s\n' "proxy RSS (KiB) before -> after" "$rss0" "$rss1"
