# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# What bench_proxy.sh and bench_tls.sh share: a private network namespace
# with loopback up (NS, torn down with DIR on exit), the ECDSA P-256
# certificate every proxy serves, the nginx backend on 127.0.0.1:18080
# (one worker, a 13-byte answer), the suites the proxies are set to, and
# the proxies' CPU time. Expects NS and DIR to be set.

CIPHERS=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384
HZ=$(getconf CLK_TCK)

bench_cleanup() {
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
}
trap bench_cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }

# bench_setup CN: the namespace, $DIR/cert.pem + key.pem for CN, the backend
bench_setup() {
  ip netns add "$NS"
  nsx ip link set lo up
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$1" -addext "subjectAltName=DNS:$1" \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
  cat > "$DIR/backend.conf" <<EOC
user root; worker_processes 1; pid $DIR/backend.pid; error_log $DIR/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:18080 backlog=4096; location / { return 200 "hello, bench\n"; } } }
EOC
  nsx nginx -c "$DIR/backend.conf"
}

cpu_ticks() { # sum of utime+stime of the given pids (whole thread groups), in clock ticks
  local t=0
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
