#!/usr/bin/env bash
# Clock skew between L7 hosts: two proxies with the same PoP secret on
# loopback, one of them with its clock moved by libfaketime. A ticket made
# by one must resume on the other when the clocks are up to clock_skew_s
# (300 s) apart, either way round, and must not when they are further
# apart than the key window allows.
#
#   tests/e2e/test_tls_skew.sh [BUILD_DIR]
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath "${1:-$REPO/build}")
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -f "$FAKETIME_LIB" ] || { echo "skipped: needs libfaketime (Debian package faketime)"; exit 77; }
DIR=$(mktemp -d /tmp/portico-tls-skew.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
# libfaketime goes first in LD_PRELOAD: an ASan build must not insist on
# its runtime coming first (ASan does not intercept the clock calls).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}:verify_asan_link_order=0

# shellcheck source=tests/e2e/tap.sh
. "$REPO/tests/e2e/tap.sh"

cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=skew.test \
  -addext subjectAltName=DNS:skew.test -keyout key.pem -out cert.pem 2>/dev/null
head -c 64 /dev/urandom > secret
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start NAME OFFSET: a proxy whose clock is OFFSET ahead ("+0s", "+120s", "-120s")
declare -A PORT
start() {
  local port
  port=$(free_port)
  cat > "$1.conf" <<EOF
pop = "skew"; host = "$1"; workers = 1; access_log = "";
listeners = ( { address = "127.0.0.1:$port"; tls = true; } );
tls = { certificate = "cert.pem"; key = "key.pem"; ticket_secret = "secret";
        ticket_period_s = 60; session_lifetime_s = 600; clock_skew_s = 300; };
upstream = { backends = [ "127.0.0.1:9" ]; };
EOF
  # Only the wall clock moves: timers keep the real monotonic clock. The
  # library itself, not the faketime program (which would stay between
  # us and the proxy's pid).
  env LD_PRELOAD="$FAKETIME_LIB" FAKETIME="$2" FAKETIME_DONT_FAKE_MONOTONIC=1 \
    "$BUILD/l7proxy/l7proxy" -c "$1.conf" 2>"$1.err" &
  pids+=($!)
  PORT[$1]=$port
}
start now +0s
start ahead2 +120s
start behind2 -120s
start ahead10 +600s
sleep 0.5
for h in now ahead2 behind2 ahead10; do
  for ((i = 0; i < 50; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/${PORT[$h]}") 2>/dev/null && break; sleep 0.05; done
done

# resumes FROM TO [TLS12]: a ticket from FROM offered to TO; prints New/Reused
resumes() {
  local v=()
  [ "${3:-}" = tls12 ] && v=(-tls1_2)
  (printf 'GET / HTTP/1.1\r\nHost: skew.test\r\nConnection: close\r\n\r\n'; sleep 0.3) |
    openssl s_client -ign_eof "${v[@]}" -CAfile cert.pem -connect "127.0.0.1:${PORT[$1]}" \
      -servername skew.test -sess_out "$1.sess" >/dev/null 2>&1
  (printf 'GET / HTTP/1.1\r\nHost: skew.test\r\nConnection: close\r\n\r\n'; sleep 0.3) |
    openssl s_client -ign_eof "${v[@]}" -CAfile cert.pem -connect "127.0.0.1:${PORT[$2]}" \
    -servername skew.test -sess_in "$1.sess" 2>&1 | grep -aoE '^(New|Reused),' | tr -d ,
}

check "same clock: resumed (control)" test "$(resumes now now)" = Reused
check "ticket from a host 2 min ahead resumes on one on time (TLS 1.3)" test "$(resumes ahead2 now)" = Reused
check "ticket from a host 2 min ahead resumes on one on time (TLS 1.2)" test "$(resumes ahead2 now tls12)" = Reused
check "ticket from a host on time resumes on one 2 min ahead" test "$(resumes now ahead2)" = Reused
check "ticket from a host 2 min behind resumes on one on time" test "$(resumes behind2 now)" = Reused
check "2 min behind -> 2 min ahead (4 min apart) resumes" test "$(resumes behind2 ahead2)" = Reused
check "a host 10 min ahead is outside the window: full handshake, not an error" test "$(resumes ahead10 now)" = New
for i in 0 1 2 3; do
  h=$(echo now ahead2 behind2 ahead10 | cut -d' ' -f$((i + 1)))
  kill -0 "${pids[$i]}" 2>/dev/null || { echo "not ok - proxy $h died"; cat "$h.err"; failed=$((failed + 1)); }
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
