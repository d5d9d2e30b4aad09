#!/usr/bin/env bash
# bench_proxy - the proxy's HTTPS throughput and full-handshake rate, next
# to nginx configured for the same job, on this machine, in the same run.
#
#   tests/bench/bench_proxy.sh [BUILD_DIR] [RUNS]
#
# Both proxies: 1 worker, TLS 1.2/1.3 with the same ECDHE+AEAD suites and
# X25519/P-256, an ECDSA P-256 certificate, a keepalive pool to the same
# nginx backend (1 worker, a 13-byte response), an access log, and the
# request-ID / served-by headers. The client is h2load (1 thread).
#   throughput: HTTP/1.1 keepalive, 100 connections, REQS requests
#   handshakes: CONNS connections of one request each (a full handshake per
#               connection: h2load does not resume sessions)
# Each figure is the median of RUNS runs, the proxies alternating. CPU is
# the proxy's user+system time over the run (all its processes/threads):
# requests per CPU-second compare per-core cost on a shared 2-core box.
# Runs in a private network namespace on its loopback; bounded in time.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
RUNS=${2:-3}
REQS=${REQS:-60000}
CONNS=${CONNS:-1000}
NS=benchp$$
DIR=$(mktemp -d /tmp/portico-bench.XXXXXX)
[ "$(id -u)" -eq 0 ] || { echo "bench_proxy: needs root (netns)"; exit 77; }
command -v h2load >/dev/null || { echo "bench_proxy: needs h2load (nghttp2-client)"; exit 1; }

# shellcheck source=tests/bench/proxy_bench_lib.sh
. "$REPO/tests/bench/proxy_bench_lib.sh"
bench_setup bench
cat > "$DIR/nginx.conf" <<EOC
user root; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/nginx.err;
events { worker_connections 8192; }
http {
  access_log $DIR/nginx-access.log combined buffer=64k;
  upstream be { server 127.0.0.1:18080; keepalive 256; }
  server {
    listen 127.0.0.1:19443 ssl backlog=4096;
    ssl_certificate $DIR/cert.pem; ssl_certificate_key $DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $CIPHERS; ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1;
    location / {
      proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Request-Id \$request_id;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      add_header X-Served-By bench/nginx; add_header X-Request-Id \$request_id;
    }
  }
}
EOC
cat > "$DIR/l7proxy.conf" <<EOC
pop = "bench"; host = "l7proxy"; workers = 1; access_log = "$DIR/l7-access.log";
listeners = ( { address = "127.0.0.1:18443"; tls = true; } );
tls = { certificate = "$DIR/cert.pem"; key = "$DIR/key.pem"; };
upstream = { backends = [ "127.0.0.1:18080" ]; idle_timeout_ms = 60000; };  # nginx keeps idle upstream connections 60 s
EOC

nsx nginx -c "$DIR/nginx.conf"
nsx setsid "$BUILD/l7proxy/l7proxy" -c "$DIR/l7proxy.conf" 2>"$DIR/l7.err" &
sleep 0.5
L7PID=$(nsx pgrep -f "l7proxy -c $DIR/l7proxy.conf")
NGXPIDS="$(cat "$DIR/nginx.pid") $(pgrep -P "$(cat "$DIR/nginx.pid")" | tr '\n' ' ')"


# run NAME PORT PIDS... -- H2LOAD ARGS: prints "req_per_s cpu_s requests"
run() {
  local port=$1; shift
  local pids=() a
  while [ "$1" != -- ]; do pids+=("$1"); shift; done
  shift
  local c0 c1 out
  c0=$(cpu_ticks "${pids[@]}")
  out=$(nsx timeout 120 h2load --h1 -t 1 "$@" "https://127.0.0.1:$port/" 2>&1)
  c1=$(cpu_ticks "${pids[@]}")
  local rps ok
  rps=$(awk '/^finished in/{gsub(",","",$4); print $4}' <<<"$out")
  ok=$(awk '/^requests:/{print $8}' <<<"$out")
  echo "$rps $(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}') $ok"
}


declare -A R
for ((i = 0; i < RUNS; i++)); do
  for who in l7proxy nginx; do
    if [ $who = l7proxy ]; then port=18443; pids=($L7PID); else port=19443; pids=($NGXPIDS); fi
    read -r rps cpu ok < <(run $port "${pids[@]}" -- -c 100 -n "$REQS")
    [ "$ok" = "$REQS" ] || echo "warning: $who throughput run: $ok/$REQS succeeded" >&2
    R[$who.tput.rps]+="$rps "
    R[$who.tput.eff]+="$(awk -v n="$REQS" -v c="$cpu" 'BEGIN{printf "%.0f", (c > 0 ? n / c : 0)}') "
    read -r rps cpu ok < <(run $port "${pids[@]}" -- -c "$CONNS" -n "$CONNS")
    [ "$ok" = "$CONNS" ] || echo "warning: $who handshake run: $ok/$CONNS succeeded" >&2
    R[$who.hs.rps]+="$rps "
    R[$who.hs.eff]+="$(awk -v n="$CONNS" -v c="$cpu" 'BEGIN{printf "%.0f", (c > 0 ? n / c : 0)}') "
  done
done

med() { tr ' ' '\n' <<<"${R[$1]}" | grep . | median; }
printf '# %s runs (median), h2load --h1 -t 1; keepalive: -c 100 -n %s; handshakes: -c %s -n %s\n' \
  "$RUNS" "$REQS" "$CONNS" "$CONNS"
printf '%-34s %14s %14s %10s\n' "figure" "l7proxy" "nginx" "ratio"
for f in "tput.rps:HTTPS keepalive req/s" "tput.eff:HTTPS keepalive req per CPU-s" \
         "hs.rps:full handshakes/s" "hs.eff:full handshakes per CPU-s"; do
  k=${f%%:*}; label=${f#*:}
  a=$(med "l7proxy.$k"); b=$(med "nginx.$k")
  printf '%-34s %14s %14s %9.2fx\n' "$label" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{print (b > 0 ? a / b : 0)}')"
done
echo "# l7proxy access log: $(grep -c '/resumed$' "$DIR/l7-access.log" || true) of $(wc -l < "$DIR/l7-access.log") requests came on resumed TLS sessions (0 = every handshake was full)"
echo "# nginx $(nginx -v 2>&1 | sed 's/.*\///') with $(openssl version | cut -d' ' -f1-2); l7proxy with BoringSSL (android-libboringssl)"
