#!/usr/bin/env bash
# bench_idle_mem - memory per idle TLS keepalive connection, l7proxy next to
# nginx, on this machine, in the same run.
#
#   tests/bench/bench_idle_mem.sh [BUILD_DIR] [CONNECTIONS]   (build, 1000)
#
# Each proxy (one worker, the same ECDSA P-256 certificate, TLS 1.3, an
# HTTP/1.1 keepalive upstream to the same nginx backend) gets CONNECTIONS
# TLS connections that each make one request and then stay open, idle;
# the figure is the growth of the worker's RSS divided by the connections
# (tests/e2e/proxy_probe.py mem, after a warm-up). Twice per proxy: after a
# 2-byte response and after a 24 KiB one (what a connection keeps of its
# peak). Runs in a private network namespace on its loopback.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
N=${2:-1000}
NS=benchm$$
DIR=$(mktemp -d /tmp/portico-bench-mem.XXXXXX)
[ "$(id -u)" -eq 0 ] || { echo "bench_idle_mem: needs root (netns)"; exit 77; }

cleanup() {
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
nsx ip link set lo up
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
mkdir -p "$DIR/www/files"
head -c 24K /dev/urandom > "$DIR/www/files/page"
cat > "$DIR/backend.conf" <<EOC
user root; worker_processes 1; pid $DIR/backend.pid; error_log $DIR/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:18080; root $DIR/www;
    location = / { return 200 "ok"; } location /files/ { } } }
EOC
cat > "$DIR/nginx.conf" <<EOC
user root; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/nginx.err;
worker_rlimit_nofile 65536;
events { worker_connections 65536; }
http { access_log off; keepalive_timeout 300s; keepalive_requests 10000000;
  upstream be { server 127.0.0.1:18080; keepalive 32; }
  server { listen 127.0.0.1:19443 ssl backlog=4096;
    ssl_certificate $DIR/cert.pem; ssl_certificate_key $DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_ecdh_curve X25519:prime256v1;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOC
cat > "$DIR/l7proxy.conf" <<EOC
pop = "bench"; host = "l7"; workers = 1; access_log = "";
listeners = ( { address = "127.0.0.1:18443"; tls = true; } );
tls = { certificate = "$DIR/cert.pem"; key = "$DIR/key.pem"; };
client = { idle_timeout_ms = 300000; };
upstream = { backends = [ "127.0.0.1:18080" ]; };
EOC
nsx nginx -c "$DIR/backend.conf"

# figure PROXY PORT PID PATH: KiB per idle connection
figure() {
  nsx /usr/bin/python3 "$REPO/tests/e2e/proxy_probe.py" mem "$2" "$3" "$N" "$4" "$4" |
    awk '/^MEM_PER_CONN_KIB/{print $2}'
}
printf '# %s idle TLS keepalive connections per proxy, one worker each\n' "$N"
printf '%-40s %10s %10s %8s\n' "KiB per idle TLS connection, after" "l7proxy" "nginx" "ratio"
for path in / /files/page; do
  # A fresh process per figure: memory left by one round cannot hide the next.
  nsx setsid bash -c "ulimit -n 65536; exec \"$BUILD/l7proxy/l7proxy\" -c \"$DIR/l7proxy.conf\"" \
    2>"$DIR/l7.err" &
  nsx nginx -c "$DIR/nginx.conf"
  sleep 0.5
  l7pid=$(pgrep -f "l7proxy -c $DIR/l7proxy.conf" | head -1)
  ngxpid=$(pgrep -P "$(cat "$DIR/nginx.pid")")
  a=$(figure l7proxy 18443 "$l7pid" "$path")
  b=$(figure nginx 19443 "$ngxpid" "$path")
  printf '%-40s %10s %10s %7sx\n' "$([ "$path" = / ] && echo "a 2-byte response" || echo "a 24 KiB response")" \
    "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}')"
  kill "$l7pid"
  kill "$(cat "$DIR/nginx.pid")"
  sleep 0.5
done
echo "# nginx $(nginx -v 2>&1 | sed 's/.*\///') with $(openssl version | cut -d' ' -f1-2); l7proxy with BoringSSL"
