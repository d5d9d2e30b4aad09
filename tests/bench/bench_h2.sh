#!/usr/bin/env bash
# bench_h2 - the proxy's HTTP/2 and gRPC throughput, next to nginx and
# HAProxy configured for the same job, on this machine, in the same run.
#
#   tests/bench/bench_h2.sh [BUILD_DIR] [RUNS]        (defaults: build, 3)
#
# Client: h2load, one thread, HTTP/2 over TLS (ALPN h2) to every proxy.
#   A  -c 100 -m 10, GET /100: a 100-byte response       (-n $A_REQS)
#   B  -c 100 -m 10, GET /16k: a 16 KiB response         (-n $B_REQS)
#   C  -c 10 -m 10, gRPC unary POST (grpc_body.py, 10-byte payload each way),
#      client -> proxy h2 over TLS, proxy -> backend h2c  (-n $C_REQS)
# The client side is TLS for C too: that is how gRPC reaches an edge proxy,
# and it keeps C comparable with A and B.
#
# The three proxies: one worker (nginx worker_processes 1, haproxy nbthread
# 1, l7proxy workers 1); TLS 1.2/1.3 with the same ECDHE+AEAD suites and
# X25519/P-256 and the same ECDSA P-256 certificate (TLS 1.3 negotiates
# AES-128-GCM everywhere); an access log (nginx and l7proxy buffer it;
# haproxy has no file log, it writes one line per request to stdout); the same
# headers added (request: X-Request-Id, X-Forwarded-For/-Proto, X-Real-IP;
# response: X-Request-Id, X-Served-By).
#   A, B: HTTP/1.1 keepalive to one nginx backend (1 worker, static files,
#         open_file_cache). HTTP/1.1 because it is the one upstream protocol
#         all three speak for plain HTTP (nginx 1.22 has no h2 proxy_pass).
#         1,000 streams in flight means up to ~1,000 upstream connections:
#         every proxy may keep that many idle (nginx keepalive 1024, l7proxy
#         max_idle 1024, haproxy pool-max-conn 1024 + http-reuse always),
#         all for 60 s (l7proxy's http1 default is 4 s, less than the other
#         proxies' turns between two of its runs), so no run measures
#         upstream connection churn.
#   C:    h2c to tests/bench/h2_backend (1 thread). nginx grpc_pass puts one
#         stream on each upstream connection (keepalive 256 >= the 100 calls
#         in flight); haproxy (proto h2) and l7proxy (h2c) multiplex.
# Each figure is the median of RUNS runs, the proxies alternating. CPU is the
# proxy's user+system time over the run from /proc (all its processes and
# threads): requests per CPU-second compare per-core cost on a shared box
# where h2load and the backends take CPU from the same two cores.
# Before timing, curl checks each proxy's answer to each figure (status,
# body size, our headers, grpc-status 0 in the trailers). A run with fewer
# "succeeded" (or 2xx) than requested prints a warning, as does any check.
#
# PERF=DIR (optional): afterwards, one more l7proxy run of A and of C under
# `perf record $PERF_G -p`, reports (flat and call graph) left in DIR.
# PERF_G defaults to -g (frame pointers: cheap, but chains through libc,
# nghttp2 and BoringSSL break); PERF_G="--call-graph dwarf" gives whole
# chains. RUNS=0 skips the table (sanity checks and profiles only).
#
# Runs in a private network namespace on its loopback; every h2load is
# bounded by `timeout`; 1.5 to 2 minutes with RUNS=3 on a 2-core box.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
RUNS=${2:-3}
A_REQS=${A_REQS:-120000}
B_REQS=${B_REQS:-50000}
C_REQS=${C_REQS:-120000}
PERF=${PERF:-}
PERF_G=${PERF_G:--g}
NS=benchh2$$
[ "$(id -u)" -eq 0 ] || { echo "bench_h2: needs root (netns)"; exit 77; }
for t in h2load nginx haproxy python3 openssl curl; do
  command -v $t >/dev/null || { echo "bench_h2: needs $t"; exit 1; }
done
L7=$BUILD/l7proxy/l7proxy
H2BE=$BUILD/tests/bench/h2_backend
for f in "$L7" "$H2BE"; do [ -x "$f" ] || { echo "bench_h2: $f not built"; exit 1; }; done
if [ -n "$PERF" ]; then
  command -v perf >/dev/null || { echo "bench_h2: PERF set but no perf"; exit 1; }
  mkdir -p "$PERF"
fi
DIR=$(mktemp -d /tmp/portico-bench-h2.XXXXXX)
# Run copies: a rebuild during the run must not change what is measured (or
# leave perf with a deleted binary and no symbols).
cp "$L7" "$DIR/l7proxy.bin"; L7=$DIR/l7proxy.bin
L7REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -d "$DIR" ]; then # say why, before the logs go
    for f in "$DIR"/*.err; do [ -s "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
  fi
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
die() { echo "bench_h2: $*" >&2; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
ip netns add "$NS"
nsx ip link set lo up

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
cat "$DIR/cert.pem" "$DIR/key.pem" > "$DIR/crt-key.pem" # haproxy's crt
CIPHERS=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384
# TLS 1.3 in BoringSSL's order (AES-128-GCM first with AES-NI): without it OpenSSL
# follows h2load's preference and picks AES-256-GCM, l7proxy AES-128-GCM.
SUITES13=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
mkdir "$DIR/www"
head -c 100 /dev/zero | tr '\0' x > "$DIR/www/100"
head -c 16384 /dev/zero | tr '\0' x > "$DIR/www/16k"
python3 "$REPO/tests/bench/grpc_body.py" "$DIR/grpc.bin" 10
GRPC_PATH=/grpc.testing.TestService/UnaryCall

# --- backends ------------------------------------------------------------------
cat > "$DIR/backend.conf" <<EOC
user root; worker_processes 1; pid $DIR/backend.pid; error_log $DIR/backend.err;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  sendfile on; tcp_nopush on; etag off; default_type application/octet-stream;
  open_file_cache max=16 inactive=300s; open_file_cache_valid 300s;
  server { listen 127.0.0.1:18080 backlog=4096; root $DIR/www; } }
EOC

# --- the proxies: l7proxy :18443, nginx :19443, haproxy :20443 -----------------
cat > "$DIR/l7proxy.conf" <<EOC
pop = "bench"; host = "l7proxy"; workers = 1; access_log = "$DIR/l7-access.log";
listeners = ( { address = "127.0.0.1:18443"; tls = true; } );
tls = { certificate = "$DIR/cert.pem"; key = "$DIR/key.pem"; };
clusters = (
  { name = "web"; protocol = "http1"; backends = [ "127.0.0.1:18080" ];
    max_connections = 2048; max_idle = 1024; idle_timeout_ms = 60000; },
  { name = "grpc"; protocol = "h2c"; backends = [ "127.0.0.1:18090" ]; } );
routes = ( { path_prefix = "/grpc.testing.TestService/"; cluster = "grpc"; },
           { path_prefix = "/"; cluster = "web"; } );
EOC

cat > "$DIR/nginx.conf" <<EOC
user root; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/nginx.err;
events { worker_connections 8192; }
http {
  access_log $DIR/nginx-access.log combined buffer=64k;
  keepalive_requests 10000000;   # also caps requests per h2 connection (1000 by default)
  upstream web  { server 127.0.0.1:18080; keepalive 1024; keepalive_requests 10000000; keepalive_timeout 60s; }
  upstream grpc { server 127.0.0.1:18090; keepalive 256;  keepalive_requests 10000000; keepalive_timeout 60s; }
  server {
    listen 127.0.0.1:19443 ssl http2 backlog=4096;
    ssl_certificate $DIR/cert.pem; ssl_certificate_key $DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $CIPHERS; ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1; ssl_conf_command Ciphersuites $SUITES13;
    add_header X-Served-By bench/nginx; add_header X-Request-Id \$request_id;
    location / {
      proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Request-Id \$request_id;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Real-IP \$remote_addr;
    }
    location /grpc.testing.TestService/ {
      grpc_pass grpc://grpc;
      grpc_set_header X-Request-Id \$request_id;
      grpc_set_header X-Forwarded-For \$remote_addr;
      grpc_set_header X-Forwarded-Proto \$scheme;
      grpc_set_header X-Real-IP \$remote_addr;
    }
  }
}
EOC

cat > "$DIR/haproxy.cfg" <<EOC
global
  nbthread 1
  maxconn 8000
  log stdout format raw local0
  ssl-default-bind-ciphers $CIPHERS
  ssl-default-bind-ciphersuites $SUITES13
  ssl-default-bind-options ssl-min-ver TLSv1.2
  ssl-default-bind-curves X25519:P-256
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:20443 ssl crt $DIR/crt-key.pem alpn h2,http/1.1
  unique-id-format %[uuid]
  http-request set-header X-Request-Id %[unique-id]
  http-request set-header X-Forwarded-For %[src]
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Real-IP %[src]
  http-response set-header X-Request-Id %[unique-id]
  http-response set-header X-Served-By bench/haproxy
  use_backend grpc if { path_beg /grpc.testing.TestService/ }
  default_backend web
backend web
  http-reuse always
  server s1 127.0.0.1:18080 pool-max-conn 1024 pool-purge-delay 60s
backend grpc
  http-reuse always
  server s1 127.0.0.1:18090 proto h2
EOC

nsx nginx -t -q -c "$DIR/backend.conf" || die "backend nginx config rejected"
nsx nginx -t -q -c "$DIR/nginx.conf" || die "nginx config rejected"
nsx haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy config rejected"
nsx nginx -c "$DIR/backend.conf"
nsx setsid "$H2BE" --listen 127.0.0.1:18090 >"$DIR/h2be.out" 2>"$DIR/h2be.err" &
nsx nginx -c "$DIR/nginx.conf"
nsx setsid haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy-access.log" 2>"$DIR/haproxy.err" &
nsx setsid "$L7" -c "$DIR/l7proxy.conf" 2>"$DIR/l7.err" &
for ((i = 0; i < 50; i++)); do # wait for every port (l7proxy exits if a port is taken)
  up=$(nsx ss -Hltn | awk '{print $4}' | grep -cE ':(18080|18090|18443|19443|20443)$' || true)
  [ "$up" -ge 5 ] && break
  sleep 0.1
done
[ "$up" -ge 5 ] || { nsx ss -ltnp >&2; die "not everything is listening"; }
L7PID=$(nsx pgrep -f "^$L7 -c $DIR/l7proxy.conf") || die "l7proxy did not start: $(cat "$DIR/l7.err")"
HAPID=$(nsx pgrep -f "^haproxy -db -f $DIR/haproxy.cfg") || die "haproxy did not start"
NGXPIDS="$(cat "$DIR/nginx.pid") $(pgrep -P "$(cat "$DIR/nginx.pid")" | tr '\n' ' ')"
H2BEPID=$(nsx pgrep -f "^$H2BE --listen") || die "h2_backend did not start"
declare -A PORT=([l7proxy]=18443 [nginx]=19443 [haproxy]=20443)
declare -A PIDS=([l7proxy]=$L7PID [nginx]=$NGXPIDS [haproxy]=$HAPID)
PROXIES="l7proxy nginx haproxy"

# h2load arguments of each figure (after -t 1; the URL path last)
declare -A ARGS=(
  [A]="-c 100 -m 10 -n $A_REQS"
  [B]="-c 100 -m 10 -n $B_REQS"
  [C]="-c 10 -m 10 -n $C_REQS -d $DIR/grpc.bin -H content-type:application/grpc -H te:trailers"
)
declare -A REQS=([A]=$A_REQS [B]=$B_REQS [C]=$C_REQS)
declare -A URLPATH=([A]=/100 [B]=/16k [C]=$GRPC_PATH)
FIGS="A B C"

# --- sanity: every proxy answers each figure's request as expected ------------
# (a 200 with our headers; for C the gRPC trailers with grpc-status 0)
warnings=$(mktemp "$DIR/warn.XXXXXX")
exec 3>&2 2> >(tee -a "$warnings" >&3)
for who in $PROXIES; do
  for f in $FIGS; do
    u="https://127.0.0.1:${PORT[$who]}${URLPATH[$f]}"
    if [ $f = C ]; then
      out=$(nsx timeout 10 curl -sk --http2 -D - -o "$DIR/body" --data-binary @"$DIR/grpc.bin" \
            -H 'content-type: application/grpc' -H 'te: trailers' "$u" 2>&1) || true
      grep -qi '^grpc-status: *0' <<<"$out" || echo "warning: $who $f: no grpc-status 0: $out" >&2
    else
      out=$(nsx timeout 10 curl -sk --http2 -D - -o "$DIR/body" "$u" 2>&1) || true
      want=$([ $f = A ] && echo 100 || echo 16384)
      [ "$(stat -c %s "$DIR/body" 2>/dev/null)" = "$want" ] ||
        echo "warning: $who $f: body is not $want bytes: $out" >&2
    fi
    grep -q '^HTTP/2 200' <<<"$out" || echo "warning: $who $f: not an HTTP/2 200: $out" >&2
    grep -qi '^x-served-by:' <<<"$out" || echo "warning: $who $f: no x-served-by" >&2
    grep -qi '^x-request-id:' <<<"$out" || echo "warning: $who $f: no x-request-id" >&2
  done
done

cpu_ticks() { # sum of utime+stime of the given pids (whole thread groups), in ticks
  local t=0 p s
  for p in "$@"; do
    s=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || die "process $p is gone"
    t=$((t + s))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

# run WHO FIG: one h2load run; prints "req_per_s cpu_s ok", keeps h2load's output.
# ok = requests h2load counts as succeeded, or fewer if not all got a 2xx.
run() {
  local who=$1 f=$2 c0 c1 out rps ok ok2
  # shellcheck disable=SC2086 # ARGS are word lists
  c0=$(cpu_ticks ${PIDS[$who]})
  out=$(nsx timeout 60 h2load -t 1 ${ARGS[$f]} "https://127.0.0.1:${PORT[$who]}${URLPATH[$f]}" 2>&1) || true
  c1=$(cpu_ticks ${PIDS[$who]})
  echo "$out" > "$DIR/h2load.$who.$f.out"
  rps=$(awk '/^finished in/{gsub(",","",$4); print $4}' <<<"$out")
  ok=$(awk '/^requests:/{print $8}' <<<"$out")
  ok2=$(awk '/^status codes:/{print $3}' <<<"$out")
  [ "${ok2:-0}" -lt "${ok:-0}" ] && ok=$ok2
  echo "${rps:-0} $(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}') ${ok:-0}"
}

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

declare -A R TLS
for ((i = 0; i < RUNS; i++)); do
  for f in $FIGS; do
    for who in $PROXIES; do
      read -r rps cpu ok < <(run $who $f)
      n=${REQS[$f]}
      if [ "$ok" != "$n" ]; then
        echo "warning: $who $f run $((i + 1)): $ok/$n succeeded with a 2xx:" >&2
        grep -E '^(requests|status codes|finished)' "$DIR/h2load.$who.$f.out" | sed 's/^/  /' >&2 || true
        tail -3 "$DIR/h2load.$who.$f.out" | sed 's/^/  /' >&2
      fi
      R[$who.$f.rps]+="$rps "
      R[$who.$f.eff]+="$(awk -v n="$ok" -v c="$cpu" 'BEGIN{printf "%.0f", (c > 0 ? n / c : 0)}') "
      R[$who.$f.cpu]+="$cpu "
      [ -n "${TLS[$who]:-}" ] || TLS[$who]=$(awk -F': ' '/^TLS Protocol|^Cipher|^Server Temp Key|^Application protocol/{printf "%s%s", s, $2; s=" "}' "$DIR/h2load.$who.$f.out")
    done
  done
done

ELAPSED=$SECONDS
exec 2>&3 3>&-
# --- results ---------------------------------------------------------------------
sleep 0.1 # the tee behind stderr
echo "# sanity checks and runs: $(grep -c '^warning' "$warnings" || true) warnings (see above)"
if [ "$RUNS" -gt 0 ]; then
med() { tr ' ' '\n' <<<"${R[$1]}" | grep . | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", (b > 0 ? a / b : 0)}'; }
declare -A LABEL=(
  [A]="A h2/TLS 100 B (-c100 -m10)"
  [B]="B h2/TLS 16 KiB (-c100 -m10)"
  [C]="C gRPC unary (-c10 -m10)"
)
printf '# %s runs (median), h2load -t 1 over TLS (h2); -n A %s, B %s, C %s; %s s\n' \
  "$RUNS" "$A_REQS" "$B_REQS" "$C_REQS" "$ELAPSED"
printf '%-46s %10s %10s %10s %8s %8s\n' figure l7proxy nginx haproxy l7/nginx l7/hapx
for f in $FIGS; do
  for k in rps:req/s eff:"req per CPU-s" cpu:"proxy CPU-s per run"; do
    m=${k%%:*}
    a=$(med l7proxy.$f.$m); b=$(med nginx.$f.$m); c=$(med haproxy.$f.$m)
    printf '%-46s %10s %10s %10s %8s %8s\n' "${LABEL[$f]} ${k#*:}" "$a" "$b" "$c" \
      "$(ratio "$a" "$b")" "$(ratio "$a" "$c")"
  done
done
for who in $PROXIES; do echo "# $who TLS: ${TLS[$who]}"; done
sleep 0.2 # let the buffered logs reach their files
echo "# access log lines: l7proxy $(wc -l < "$DIR/l7-access.log"), nginx $(wc -l < "$DIR/nginx-access.log") (buffered, may lag), haproxy $(wc -l < "$DIR/haproxy-access.log")"
echo "# l7proxy gRPC calls logged with grpc=0: $(grep -c ' grpc=0' "$DIR/l7-access.log" || true)"
for f in $FIGS; do # every run, to judge the spread
  for m in rps eff; do
    printf '# runs %s %-6s' $f $m
    for who in $PROXIES; do printf ' %s: %s' $who "${R[$who.$f.$m]% }"; done
    echo
  done
done
fi
echo "# nginx $(nginx -v 2>&1 | sed 's/.*\///') with $(openssl version | cut -d' ' -f1-2);" \
  "haproxy $(haproxy -v | awk 'NR==1{print $3}') with $(haproxy -vv | awk -F': ' '/^Running on OpenSSL/{print $2}' | cut -d' ' -f1-2);" \
  "l7proxy $L7REV with BoringSSL (android-libboringssl); $(h2load --version | head -1); kernel $(uname -r)"

# --- optional profile of l7proxy -------------------------------------------------
if [ -n "$PERF" ]; then
  for f in A C; do
    # shellcheck disable=SC2086 # PERF_G is a word list
    perf record -q $PERF_G -p "$L7PID" -o "$PERF/perf-$f.data" 2>"$PERF/perf-$f.err" &
    perfpid=$!
    sleep 0.5
    read -r rps cpu ok < <(run l7proxy $f)
    kill -INT $perfpid; wait $perfpid || true
    echo "# perf $f: l7proxy $rps req/s, $ok/${REQS[$f]} succeeded (under perf)"
    perf report -i "$PERF/perf-$f.data" --stdio --no-children -g none --percent-limit 0.5 \
      > "$PERF/perf-$f-flat.txt" 2>/dev/null
    perf report -i "$PERF/perf-$f.data" --stdio --children --percent-limit 2 \
      > "$PERF/perf-$f-graph.txt" 2>/dev/null
    echo "# perf $f: l7proxy samples by object: $(perf report -i "$PERF/perf-$f.data" --stdio \
      --no-children --sort dso -g none 2>/dev/null | awk '!/^#/ && NF {printf "%s %s, ", $2, $1}')"
    grep -v '^#' "$PERF/perf-$f-flat.txt" | grep . | head -40
  done
fi

# h2_backend prints its requests and CPU per request at SIGTERM: was it the limit?
kill -TERM "$H2BEPID" 2>/dev/null || true
for ((i = 0; i < 20; i++)); do kill -0 "$H2BEPID" 2>/dev/null || break; sleep 0.1; done
echo "# h2_backend: $(tr '\n' ' ' < "$DIR/h2be.err")"
if grep -qv ' info: ' "$DIR/l7.err"; then echo "# l7proxy stderr:"; grep -v ' info: ' "$DIR/l7.err" | tail -5; fi
exit 0
