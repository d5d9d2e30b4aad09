#!/usr/bin/env bash
# bench_tls - TLS 1.3 handshakes per proxy CPU-second: full handshakes and
# resumptions with single-use tickets, for l7proxy (BoringSSL, and built
# with OpenSSL 3 when build-openssl/ exists) next to nginx and HAProxy
# configured for the same job, on this machine, in the same run.
#
#   tests/bench/bench_tls.sh [BUILD_DIR] [RUNS]
#
# Every proxy: 1 worker/thread, TLS 1.2-1.3, ECDHE+AEAD, X25519, one ECDSA
# P-256 certificate, tickets on (l7proxy with a PoP secret file), an HTTP
# keepalive pool to the same nginx backend (13-byte answer).
#   full:    h2load --h1, CONNS connections of one request each (h2load
#            never resumes: every handshake is full)
#   resumed: tests/bench/tls_resume_load, CLIENTS clients at once making
#            RESUMES connections in all, each client offering its newest
#            ticket once (as browsers do)
# CPU is the proxy's user+system time over the run (all its threads and
# processes): handshakes per CPU-second compare per-core cost on a shared
# 2-core box where the client runs too. Medians of RUNS runs, the proxies
# taking turns. Runs in a private network namespace on loopback.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
RUNS=${2:-3}
CONNS=${CONNS:-2000}
RESUMES=${RESUMES:-4000}
CLIENTS=${CLIENTS:-32}
OSSL_BUILD=${OSSL_BUILD:-$REPO/build-openssl}
NS=bencht$$
DIR=$(mktemp -d /tmp/portico-bench-tls.XXXXXX)
[ "$(id -u)" -eq 0 ] || { echo "bench_tls: needs root (netns)"; exit 77; }
command -v h2load >/dev/null || { echo "bench_tls: needs h2load (nghttp2-client)"; exit 1; }
command -v haproxy >/dev/null || { echo "bench_tls: needs haproxy"; exit 1; }
LOAD=$BUILD/tests/bench/tls_resume_load
[ -x "$LOAD" ] || { echo "bench_tls: build $LOAD first"; exit 1; }

# shellcheck source=tests/bench/proxy_bench_lib.sh
. "$REPO/tests/bench/proxy_bench_lib.sh"
bench_setup bench.test
cat "$DIR/cert.pem" "$DIR/key.pem" > "$DIR/combined.pem"
head -c 64 /dev/urandom > "$DIR/ticket.secret"
cat > "$DIR/nginx.conf" <<EOC
user root; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/nginx.err;
events { worker_connections 8192; }
http {
  access_log off;
  upstream be { server 127.0.0.1:18080; keepalive 256; }
  server {
    listen 127.0.0.1:19443 ssl backlog=4096;
    ssl_certificate $DIR/cert.pem; ssl_certificate_key $DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $CIPHERS; ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1;
    ssl_session_tickets on; ssl_session_cache shared:SSL:10m; ssl_session_timeout 1h;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOC
cat > "$DIR/haproxy.cfg" <<EOC
global
  nbthread 1
  pidfile $DIR/haproxy.pid
  ssl-default-bind-ciphers $CIPHERS
  ssl-default-bind-options ssl-min-ver TLSv1.2
  ssl-default-bind-curves X25519:P-256
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:20443 ssl crt $DIR/combined.pem
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:18080
EOC
l7conf() { # l7conf PORT
  cat <<EOC
pop = "bench"; host = "l7proxy"; workers = 1; access_log = "";
listeners = ( { address = "127.0.0.1:$1"; tls = true; } );
tls = { certificate = "$DIR/cert.pem"; key = "$DIR/key.pem"; ticket_secret = "$DIR/ticket.secret"; };
upstream = { backends = [ "127.0.0.1:18080" ]; idle_timeout_ms = 60000; };
EOC
}
l7conf 18443 > "$DIR/l7.conf"
l7conf 18444 > "$DIR/l7ossl.conf"

nsx nginx -c "$DIR/nginx.conf"
nsx haproxy -f "$DIR/haproxy.cfg" -D
nsx setsid "$BUILD/l7proxy/l7proxy" -c "$DIR/l7.conf" 2>"$DIR/l7.err" &
WHO=(l7proxy nginx haproxy)
if [ -x "$OSSL_BUILD/l7proxy/l7proxy" ]; then
  nsx setsid "$OSSL_BUILD/l7proxy/l7proxy" -c "$DIR/l7ossl.conf" 2>"$DIR/l7ossl.err" &
  WHO+=(l7proxy-openssl)
fi
sleep 0.7
declare -A PORT PIDS
PORT[l7proxy]=18443 PORT[l7proxy-openssl]=18444 PORT[nginx]=19443 PORT[haproxy]=20443
PIDS[l7proxy]=$(nsx pgrep -f "l7proxy -c $DIR/l7.conf")
PIDS[l7proxy-openssl]=$(nsx pgrep -f "l7proxy -c $DIR/l7ossl.conf" || true)
PIDS[nginx]="$(cat "$DIR/nginx.pid") $(pgrep -P "$(cat "$DIR/nginx.pid")" | tr '\n' ' ')"
PIDS[haproxy]=$(cat "$DIR/haproxy.pid")
for w in "${WHO[@]}"; do for p in ${PIDS[$w]}; do [ -e "/proc/$p/stat" ] || { echo "bench_tls: $w is not running (pid $p)"; cat "$DIR"/*.err; exit 1; }; done; done


declare -A R
for ((i = 0; i < RUNS; i++)); do
  for who in "${WHO[@]}"; do
    # shellcheck disable=SC2086
    set -- ${PIDS[$who]}
    c0=$(cpu_ticks "$@")
    out=$(nsx timeout 120 h2load --h1 -t 1 -c "$CONNS" -n "$CONNS" "https://127.0.0.1:${PORT[$who]}/" 2>&1)
    c1=$(cpu_ticks "$@")
    okn=$(awk '/^requests:/{print $8}' <<<"$out")
    [ "$okn" = "$CONNS" ] || echo "warning: $who full handshakes: $okn/$CONNS succeeded" >&2
    R[$who.full]+="$(awk -v n="$okn" -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.0f", (t > 0 ? n * hz / t : 0)}') "
    c0=$(cpu_ticks "$@")
    out=$(nsx timeout 120 "$LOAD" --connect "127.0.0.1:${PORT[$who]}" --sni bench.test --ca "$DIR/cert.pem" \
      --count "$RESUMES" --concurrency "$CLIENTS")
    c1=$(cpu_ticks "$@")
    read -r n r e < <(/usr/bin/python3 -c 'import json,sys
d=json.loads(sys.stdin.read())
print(d["connections"], d["resumed"], d["errors"])' <<<"$out")
    [ "$e" = 0 ] || echo "warning: $who resumptions: $e errors ($out)" >&2
    R[$who.res]+="$(awk -v n="$n" -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.0f", (t > 0 ? n * hz / t : 0)}') "
    # each client's first connection has nothing to resume
    R[$who.ratio]+="$(awk -v r="$r" -v n="$n" -v k="$CLIENTS" 'BEGIN{printf "%.1f", (n > k ? 100 * r / (n - k) : 0)}') "
  done
done

med() { tr ' ' '\n' <<<"${R[$1]}" | grep . | median; }
printf '# %s runs (median); full: h2load --h1 -c %s -n %s; resumed: %s clients at once, %s single-use connections\n' \
  "$RUNS" "$CONNS" "$CONNS" "$CLIENTS" "$RESUMES"
printf '%-18s %22s %30s %22s\n' proxy "full hs per CPU-s" "single-use conns per CPU-s" "single-use resumed %"
for who in "${WHO[@]}"; do
  printf '%-18s %22s %30s %22s\n' "$who" "$(med "$who.full")" "$(med "$who.res")" "$(med "$who.ratio")"
done
echo "# nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(haproxy -v | head -1 | cut -d' ' -f1-3), both with $(openssl version | cut -d' ' -f1-2); l7proxy with BoringSSL (android-libboringssl)"
