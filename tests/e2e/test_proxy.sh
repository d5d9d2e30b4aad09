#!/usr/bin/env bash
# End-to-end regression suite for l7proxy: one check per defect found by
# the review of the old proxy (81a7593), each driven by real clients in a
# private network namespace, against nginx and tests/e2e/fake_backend.py
# (the backend that misbehaves on purpose).
#
#   tests/e2e/test_proxy.sh [BUILD_DIR]     (default: build-asan)
#
# Every proxy config is in the legacy single-upstream form, plus the newer
# groups (client { ... }, fail_threshold) where a check needs them; the
# old proxy ignores keys it does not know, so the same suite runs against
# either. Each check starts its own proxy instance (workers = 1), so one
# crash does not fail the checks after it. Exits 77 (skipped) without
# root. Cleans up on any exit; the whole run is bounded by a timeout.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")
BIN=$BUILD/l7proxy/l7proxy
PY=/usr/bin/python3 # the python3 on PATH may be another interpreter
SUITE_TIMEOUT=240

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: network namespaces need root"
  exit 77
fi

# --- outside: the namespace and the state directory -----------------------
if [ -z "${PROXY_E2E_DIR:-}" ]; then
  if [ ! -x "$BIN" ]; then
    echo "not ok - no l7proxy binary at $BIN (build it first)"
    echo "0 passed, 1 failed"
    exit 1
  fi
  NS=prx$$
  D=$(mktemp -d /tmp/portico-proxy-e2e.XXXXXX)
  cleanup() {
    local p
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns delete "$NS" 2>/dev/null
    rm -rf "$D"
  }
  trap cleanup EXIT
  ip netns add "$NS" || { echo "not ok - ip netns add $NS"; echo "0 passed, 1 failed"; exit 1; }
  ip -n "$NS" link set lo up
  timeout -s KILL "$SUITE_TIMEOUT" ip netns exec "$NS" env PROXY_E2E_DIR="$D" bash "$0" "$BUILD"
  rc=$?
  if [ "$rc" -eq 137 ]; then
    echo "not ok - the suite did not finish within $SUITE_TIMEOUT s"
    echo "0 passed, 1 failed"
    exit 1
  fi
  exit "$rc"
fi

# --- inside the namespace ----------------------------------------------------
D=$PROXY_E2E_DIR
# Daemons are stopped with SIGTERM and do not free everything on the way
# out; leak reports at exit say nothing useful. Memory errors still abort.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
HZ=$(getconf CLK_TCK)

# shellcheck source=tests/e2e/tap.sh
. "$REPO/tests/e2e/tap.sh"

declare -A PID=() PORT=()
DIED=()
FIGURES=()
BG=()
cleanup_inner() {
  local p
  for p in "${PID[@]}" "${BG[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup_inner EXIT

# Turn a probe's "ok - "/"not ok - " lines into results; anything else is a
# diagnostic. A probe that printed no result or crashed is a failure.
tap() { # tap NAME RC OUTPUT
  local name=$1 rc=$2 out=$3 n=0 line
  while IFS= read -r line; do
    case $line in
      "ok - "*) ok "${line#ok - }"; n=$((n + 1)) ;;
      "not ok - "*) bad "${line#not ok - }"; n=$((n + 1)) ;;
      MEM_PER_CONN_KIB*) FIGURES+=("KiB per idle TLS connection: ${line#* }") ;;
      "") ;;
      *) echo "# $line" ;;
    esac
  done <<<"$out"
  if [ "$rc" -ne 0 ] || [ "$n" -eq 0 ]; then bad "probe $name exited $rc"; fi
}
probe() { # probe CHECK ARGS...
  local out rc
  out=$(timeout 60 "$PY" "$HERE/proxy_probe.py" "$@" 2>&1)
  rc=$?
  tap "$1" "$rc" "$out"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # wait_port PORT: up to 5 s
  for _ in $(seq 50); do listening "$1" && return 0; sleep 0.1; done
  return 1
}
alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
now() { date +%s.%N; }
pct() { awk -v c="$1" -v hz="$HZ" -v t="$2" 'BEGIN { printf "%.1f", 100 * c / hz / t }'; }

# conf NAME PORT TLSPORT(or -) BACKEND_PORT [UPSTREAM_EXTRA [TOP_EXTRA]]
# The legacy form both proxies read; upstream timeout_ms defaults to 30 s.
conf() {
  local name=$1 port=$2 tlsport=$3 be=$4 up=${5:-} top=${6:-} tl=""
  [ "$tlsport" != - ] && tl=", { address = \"127.0.0.1:$tlsport\"; tls = true; }"
  [[ "$up" == *timeout_ms* ]] || up="timeout_ms = 30000; $up"
  cat >"$D/$name.conf" <<EOF
pop = "t"; host = "$name"; workers = 1; access_log = "$D/proxy-$name.access.log";
listeners = ( { address = "127.0.0.1:$port"; }$tl );
tls = { certificate = "$D/cert.pem"; key = "$D/key.pem"; };
upstream = { backends = [ "127.0.0.1:$be" ]; connect_timeout_ms = 2000; $up };
$top
EOF
  PORT[$name]=$port
}

# start NAME [WRAPPER...]: run the proxy (the wrapper execs it, so $! is
# the proxy's pid) and wait for its port.
start() {
  local name=$1; shift
  "$@" "$BIN" -c "$D/$name.conf" >>"$D/proxy-$name.log" 2>&1 &
  PID[$name]=$!
  if ! wait_port "${PORT[$name]}"; then
    echo "# proxy $name did not start: $(tail -3 "$D/proxy-$name.log")"
    return 1
  fi
}

# ensure NAME: restart a proxy that died (a crash is recorded, and the
# checks after it still test something).
ensure() {
  alive "$1" && return 0
  DIED+=("$1")
  echo "# proxy $1 died ($(grep -m1 -iE 'assert|abort|ERROR|require' "$D/proxy-$1.log" | cut -c1-160)); restarting it"
  start "$1"
}

stop() { # stop NAME: remember whether it was still alive
  local name=$1
  alive "$name" || DIED+=("$name")
  kill -TERM "${PID[$name]}" 2>/dev/null
  for _ in $(seq 30); do kill -0 "${PID[$name]}" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "${PID[$name]}" 2>/dev/null
  wait "${PID[$name]}" 2>/dev/null
  unset "PID[$name]"
}

# --- fixtures ----------------------------------------------------------------
NGINX=18080 FAKE=18081 FAKE_KA=18082
mkdir -p "$D/www/files" "$D/www/put" "$D/ngx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -keyout "$D/key.pem" -out "$D/cert.pem" >/dev/null 2>&1
head -c 50M /dev/zero >"$D/www/files/big"
head -c 24K /dev/urandom >"$D/www/files/page"
cat >"$D/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $D/nginx.pid;
error_log $D/nginx.error.log;
events { worker_connections 4096; }
http {
  access_log $D/nginx.access.log;
  client_body_temp_path $D/ngx/body; proxy_temp_path $D/ngx/proxy;
  fastcgi_temp_path $D/ngx/fcgi; uwsgi_temp_path $D/ngx/uwsgi; scgi_temp_path $D/ngx/scgi;
  client_max_body_size 0;
  keepalive_requests 100000;
  default_type text/plain;
  server {
    listen 127.0.0.1:$NGINX;
    location / { return 200 "ok\n"; }
    location /echo { return 200 "\$http_x_forwarded_for|\$http_x_real_ip|\$http_forwarded|\$http_x_secret|\$host|\$request_uri\n"; }
    location /files/ { root $D/www; }
    location /put/ { root $D/www; dav_methods PUT; create_full_put_path on; }
  }
}
EOF
nginx -c "$D/nginx.conf" -g "daemon off;" >"$D/nginx.out" 2>&1 &
BG+=($!)
"$PY" "$HERE/fake_backend.py" "$FAKE" "$D/fake.log" >"$D/fake.out" 2>&1 &
BG+=($!)
"$PY" "$HERE/fake_backend.py" "$FAKE_KA" "$D/fake-ka.log" --idle-close 5 >"$D/fake-ka.out" 2>&1 &
BG+=($!)
touch "$D/fake.log" "$D/fake-ka.log"
for p in $NGINX $FAKE $FAKE_KA; do
  if ! wait_port "$p"; then
    echo "not ok - backends did not start ($(cat "$D"/nginx.error.log "$D"/*.out 2>/dev/null | tail -3))"
    echo "0 passed, 1 failed"
    exit 1
  fi
done

# --- 8 (started first, it runs in the background for ~17 s) -----------------
# Upstream keepalive: the backend closes connections idle for 5 s (Node's
# default); the proxy must drop pooled connections before that (default
# idle_timeout_ms 4000). POSTs, so no replay can hide a lost race.
conf ka 8008 - "$FAKE_KA"
start ka
"$PY" "$HERE/proxy_probe.py" keepalive 8008 4 5.6 >"$D/ka.out" 2>&1 &
KA_PROBE=$!
BG+=("$KA_PROBE")

# --- 1. a head split across reads, followed by body bytes, must not abort --
echo "# 1. heads split across reads"
conf split 8000 8443 "$NGINX"
conf splitf 8001 - "$FAKE"
start split
start splitf
probe split-small 8000 tcp "$D/www/put"
probe split-small 8443 tls "$D/www/put"
probe split-large 8000 "$D/www/put"
ensure split
probe split-tls 8443 "$D/www/put"
probe bighead 8001
check "split heads: the proxies stayed alive through every split request (died: ${DIED[*]:-none})" \
  bash -c "[ ${#DIED[@]} -eq 0 ] && kill -0 ${PID[split]} 2>/dev/null && kill -0 ${PID[splitf]} 2>/dev/null"
stop split
stop splitf

# --- 2. no busy loop while buffers are full ---------------------------------
echo "# 2. CPU while a transfer is throttled"
conf cpu 8010 - "$NGINX"
conf cpuf 8011 - "$FAKE"
start cpu
start cpuf
# cpu_check NAME PID WHAT CURL_ARGS...: curl runs ~4-5 s (exit 28).
cpu_check() {
  local name=$1 pid=$2 what=$3 c0 c1 t0 t1 got frac; shift 3
  c0=$(ticks "$pid"); t0=$(now)
  got=$(curl -s -o /dev/null -w '%{size_download}/%{size_upload}' "$@")
  c1=$(ticks "$pid"); t1=$(now)
  frac=$(pct $((c1 - c0)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
  FIGURES+=("CPU, $name: $frac%")
  local moved=$(( ${got%/*} + ${got#*/} ))
  check "$what: proxy CPU $frac% of wall time (limit 15%; moved ${got%/*} down/${got#*/} up bytes)" \
    bash -c "alive=\$(kill -0 $pid 2>/dev/null && echo y); [ \"\$alive\" = y ] && [ $moved -gt 1500000 ] && awk 'BEGIN { exit !($frac < 15) }'"
}
cpu_check "slow reader" "${PID[cpu]}" "slow reader of a 50 MB download (curl --limit-rate 1M, 5 s)" \
  -m 5 --limit-rate 1M "http://127.0.0.1:8010/files/big"
cpu_check "slow uploader" "${PID[cpuf]}" "slow uploader of 50 MB (curl --limit-rate 1M, 4 s)" \
  -m 4 --limit-rate 1M -T "$D/www/files/big" "http://127.0.0.1:8011/upload"
cpu_check "slow backend reader" "${PID[cpuf]}" "fast upload to a backend reading at 1 MB/s (4 s)" \
  -m 4 -T "$D/www/files/big" "http://127.0.0.1:8011/slowread"
stop cpu
stop cpuf

# --- 3. no replay of what the backend may have processed --------------------
echo "# 3. replays (request timeout 1 s, passive health off)"
conf retry 8020 - "$FAKE" "timeout_ms = 1000; fail_threshold = 0;"
start retry
probe retry 8020 "$D/fake.log"
stop retry

# --- 4. client deadlines ---------------------------------------------------
echo "# 4. client deadlines (header, body, idle: 2 s)"
conf slow 8030 - "$FAKE" "" "client = { header_timeout_ms = 2000; body_timeout_ms = 2000; idle_timeout_ms = 2000; };"
start slow
probe slowloris 8030 2000
probe bodystall 8030 2000
probe idle 8030 2000
stop slow

# --- 5. connection cap and running out of descriptors --------------------
echo "# 5. connection cap, EMFILE"
conf cap 8040 - "$NGINX" "" "client = { max_connections = 20; };"
start cap
probe cap 8040 "${PID[cap]}" 20
stop cap
conf fd 8041 - "$NGINX"
start fd prlimit --nofile=64:64
probe emfile 8041 "${PID[fd]}" "$D/proxy-fd.log" 150
stop fd

# --- 6. memory per idle connection -----------------------------------------
echo "# 6. memory per idle TLS connection"
# Each connection did one request: a tiny response, then (fresh proxy) a
# 24 KiB one, which passes through every buffer a connection has.
# ASan's quarantine keeps freed memory resident (every handshake frees a
# lot); without it RSS measures what connections hold, plus ASan's own
# per-allocation overhead (so this is an upper bound of the real figure).
for round in "/ a tiny response" "/files/page a 24 KiB response"; do
  conf mem 8050 8450 "$NGINX"
  ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0" start mem prlimit --nofile=8192:8192
  probe mem 8450 "${PID[mem]}" 1000 "${round%% *}" "${round#* }"
  stop mem
done

# --- 7. HTTP/1 semantics ---------------------------------------------------
echo "# 7. HTTP/1.1 semantics"
conf main 8060 - "$NGINX"
conf mainf 8061 - "$FAKE"
start main
start mainf
probe nobody 8061 /204cl
probe nobody 8061 /304cl
probe forwarded 8060
probe host 8060 "host-probe-$$" "$D/nginx.access.log"
probe absolute 8060
probe te-space 8060 "te-probe-$$" "$D/nginx.access.log"
probe connection 8060
probe 1xx 8061
code=$(curl -s -o "$D/rst.body" -m 5 -w '%{http_code}' "http://127.0.0.1:8061/rstbody")
rc=$?
size=$(stat -c %s "$D/rst.body" 2>/dev/null || echo 0)
check "a backend reset mid close-delimited body is not passed off as complete (curl exit $rc, HTTP $code, $size bytes)" \
  test "$rc" -ne 0 -a "$rc" -ne 28

# --- 9. refusing to share a port ---------------------------------------------
echo "# 9. a port already in use with SO_REUSEPORT"
"$PY" -c 'import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 8070))
s.listen(8)
time.sleep(60)' &
holder=$!
BG+=("$holder")
wait_port 8070
conf dup 8070 - "$NGINX"
timeout -s KILL 4 "$BIN" -c "$D/dup.conf" >"$D/proxy-dup.log" 2>&1
rc=$?
msg=$(grep -m1 -iE 'use|listen|port' "$D/proxy-dup.log" | cut -c1-220)
check "refuses to start on a port another process holds with SO_REUSEPORT (exit $rc: ${msg:-no message})" \
  bash -c "[ $rc -ne 0 ] && [ $rc -ne 137 ] && grep -q 8070 '$D/proxy-dup.log' && grep -qE 'pid $holder|python' '$D/proxy-dup.log'"
kill "$holder" 2>/dev/null

# --- 8 (collect) -------------------------------------------------------------
echo "# 8. upstream keepalive vs a backend closing idle connections after 5 s"
wait "$KA_PROBE"
tap keepalive $? "$(cat "$D/ka.out")"
races=$(grep -c '^RACE' "$D/fake-ka.log")
echo "# requests that met a backend-side idle close: $races"
stop ka

# --- after everything --------------------------------------------------------
check "the proxy is still alive and serving after everything" \
  bash -c "kill -0 ${PID[main]} 2>/dev/null && kill -0 ${PID[mainf]} 2>/dev/null && [ \"\$(curl -s -m 5 http://127.0.0.1:8060/)\" = ok ]"
stop main
stop mainf
check "every proxy instance stayed up until it was stopped (died: ${DIED[*]:-none})" test "${#DIED[@]}" -eq 0
reports=$(grep -lE 'ERROR: AddressSanitizer|runtime error:' "$D"/proxy-*.log 2>/dev/null | xargs -r -n1 basename)
check "no AddressSanitizer/UBSan report in any proxy log (${reports:-none})" test -z "$reports"
for f in "$D"/proxy-*.log; do
  if grep -qE 'ERROR: AddressSanitizer|runtime error:|invariant broken|Assertion' "$f"; then
    echo "# --- $(basename "$f"):"
    grep -m3 -E 'ERROR: AddressSanitizer|runtime error:|invariant broken|Assertion' "$f" | sed 's/^/#   /'
  fi
done

for f in "${FIGURES[@]}"; do echo "# figure: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
