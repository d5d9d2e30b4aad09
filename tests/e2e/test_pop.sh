#!/usr/bin/env bash
# End-to-end: a whole PoP (deploy/popbox, with its own namespace prefix and
# state directory) driven by real clients from the client namespace.
#
#   tests/e2e/test_pop.sh [BUILD_DIR]
#
# Exits 77 (skipped) without root. Cleans up on any exit.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
export POPBOX_BUILD=${1:-${POPBOX_BUILD:-$REPO/build}}
export POPBOX_PREFIX=e2e$$
export POPBOX_STATE=$(mktemp -d /tmp/portico-e2e.XXXXXX)
export POPBOX_MAX_FILE_MB=64
export POPBOX_NO_BUILD=1
# Daemons are stopped with SIGTERM and do not free everything on the way
# out; leak reports at exit say nothing useful. Memory errors still abort.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
POPBOX=$REPO/deploy/popbox
VIP4=192.0.2.10
VIP6=2001:db8::10

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: network namespaces and XDP need root"
  exit 77
fi

# shellcheck source=tests/e2e/tap.sh
. "$REPO/tests/e2e/tap.sh"
wait_until() { local t=$1; shift; for ((i = 0; i < t * 10; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }

cleanup() {
  "$POPBOX" down >/dev/null 2>&1
  rm -rf "$POPBOX_STATE"
}
trap cleanup EXIT

node() { local n=$1; shift; ip netns exec "$POPBOX_PREFIX-$n" "$@"; }
ctl() { local n=$1; shift; LBCTL_SOCKET=$POPBOX_STATE/run/$n.sock "$POPBOX_BUILD/ctl/lbctl" "$@"; }
cc() { node client curl --cacert "$POPBOX_STATE/tls/ca.pem" -s -m 30 "$@"; }
served_by() { cc -D - -o /dev/null "$@" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}'; }
files=/dev/shm/popbox-$POPBOX_PREFIX-files
# The configured reals of an LB (VIP, address, weight), without the health
# columns that change by themselves.
reals_of() {
  ctl "$1" --json real list | /usr/bin/python3 -c 'import json,sys
print(sorted((r["vip"]["address"], r["vip"]["port"], r["address"], r["weight"]) for r in json.load(sys.stdin)))'
}

if ! "$POPBOX" up --quiet --no-traffic; then
  echo "not ok - popbox up"
  for f in "$POPBOX_STATE"/log/*.log; do echo "== $f"; tail -5 "$f"; done
  echo "0 passed, 1 failed"
  exit 1
fi
ok "popbox up ($POPBOX_PREFIX-*)"

# 1. HTTPS and HTTP, IPv4 and IPv6, through the VIP to the backend and back.
for url in "https://$VIP4/" "http://$VIP4/" "https://[$VIP6]/" "http://[$VIP6]/"; do
  out=$(cc -D - "$url" | tr -d '\r')
  check "$url reaches the backend" grep -q "served by the backend" <<<"$out"
  check "$url carries X-Served-By and X-Request-Id" \
    bash -c 'grep -qi "^x-served-by: popbox/l7[ab]$" <<<"$1" && grep -qiE "^x-request-id: [0-9a-f]{32}$" <<<"$1"' _ "$out"
done
# A client-supplied request ID is kept, and reaches the backend's side log.
rid=e2e-$$-rid
check "client X-Request-Id is echoed" \
  bash -c 'cc() { ip netns exec '"$POPBOX_PREFIX"'-client curl --cacert '"$POPBOX_STATE"'/tls/ca.pem -s -m 10 "$@"; }
           cc -D - -o /dev/null -H "X-Request-Id: '"$rid"'" https://'"$VIP4"'/ | tr -d "\r" | grep -qi "^x-request-id: '"$rid"'$"'
check "request ID is in the access log" grep -qh "id=$rid " "$POPBOX_STATE"/log/l7a.access.log "$POPBOX_STATE"/log/l7b.access.log

# 2. New connections spread over both L7 hosts.
declare -A hosts=()
for i in $(seq 40); do hosts[$(served_by "https://$VIP4/")]=1; done
check "40 connections spread over l7a and l7b (${!hosts[*]})" \
  test -n "${hosts[popbox/l7a]:-}" -a -n "${hosts[popbox/l7b]:-}"

# 3. Large download and upload, intact; the reply bytes bypass the LBs (DSR).
lb_rx() { for n in lb1 lb2; do ctl "$n" --json stats; done |
  python3 -c 'import json,sys; d=sys.stdin.read().replace("}\n{","}\0{").split("\0"); print(sum(json.loads(x)["global"]["rx"]["bytes"] for x in d))'; }
before=$(lb_rx)
want=$(sha256sum < "$files/files/32M" | cut -d' ' -f1)
got=$(cc "https://$VIP4/files/32M" | sha256sum | cut -d' ' -f1)
after=$(lb_rx)
check "32 MiB download over HTTPS/IPv4 intact" test "$want" = "$got"
check "download replies bypass the LBs (LB rx grew by $((after - before)) bytes for 32 MiB)" \
  test $((after - before)) -lt $((4 * 1024 * 1024))
got=$(cc "http://[$VIP6]/files/32M" | sha256sum | cut -d' ' -f1)
check "32 MiB download over HTTP/IPv6 intact" test "$want" = "$got"
# decap_count HOST COUNTER: packets under one of an L7 host's decap counters.
decap_count() {
  ctl "$1" --json stats |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["global"][sys.argv[1]]["packets"])' "$2"
}
gue_packets() { echo $(($(decap_count l7a decap_gue) + $(decap_count l7b decap_gue))); }
g0=$(gue_packets)
code=$(cc -T "$files/files/32M" -o /dev/null -w '%{http_code}' "https://[$VIP6]/uploads/e2e6")
check "32 MiB upload over HTTPS/IPv6 (HTTP $code) stored intact" cmp -s "$files/files/32M" "$files/uploads/e2e6"
g1=$(gue_packets)
check "[VIP6]:443 is a GUE VIP: the upload reached the L7 hosts in GUE ($g0 -> $g1 packets decapsulated)" \
  test $((g1 - g0)) -gt 100
# Health probes of a GUE VIP travel in GUE too: each L7 host has taken
# some, whether or not it served the upload.
for n in l7a l7b; do
  g=$(decap_count "$n" decap_gue)
  check "$n decapsulated GUE health probes ($g packets)" test "$g" -gt 0
done
code=$(cc -T "$files/files/32M" -H 'Transfer-Encoding: chunked' -o /dev/null -w '%{http_code}' "https://$VIP4/uploads/e2e4")
check "32 MiB chunked upload over HTTPS/IPv4 (HTTP $code) stored intact" cmp -s "$files/files/32M" "$files/uploads/e2e4"
got=$(cc "https://$VIP4/uploads/e2e4" | sha256sum | cut -d' ' -f1)
check "uploaded file reads back intact" test "$want" = "$got"

# 4. Removing a real: an established transfer on it completes, and new
#    connections go only to the other host.
hdr=$POPBOX_STATE/slow.hdr
node client curl --cacert "$POPBOX_STATE/tls/ca.pem" -s -m 60 --limit-rate 4M -D "$hdr" \
  -o "$POPBOX_STATE/slow.body" -w '%{http_code}' "https://$VIP4/files/16M" > "$POPBOX_STATE/slow.code" &
slow=$!
for i in $(seq 50); do grep -qi '^x-served-by' "$hdr" 2>/dev/null && break; sleep 0.1; done
victim=$(tr -d '\r' < "$hdr" | awk -F': ' 'tolower($1)=="x-served-by"{print $2}')
victim=${victim#popbox/}
case "$victim" in l7a) vaddr=10.0.3.2 other=l7b ;; l7b) vaddr=10.0.4.2 other=l7a ;; *) vaddr= ;; esac
if [ -z "$vaddr" ]; then
  bad "slow transfer started (no X-Served-By)"
else
  for n in lb1 lb2; do ctl "$n" real del "$VIP4:443" "$vaddr" >/dev/null; done
  check "lbctl real del removed $vaddr from $VIP4:443 on both LBs" \
    bash -c '! { LBCTL_SOCKET='"$POPBOX_STATE"'/run/lb1.sock '"$POPBOX_BUILD"'/ctl/lbctl real list; LBCTL_SOCKET='"$POPBOX_STATE"'/run/lb2.sock '"$POPBOX_BUILD"'/ctl/lbctl real list; } | grep -E "^192.0.2.10:443/tcp +'"$vaddr"' "'
  declare -A after_hosts=()
  for i in $(seq 20); do after_hosts[$(served_by "https://$VIP4/")]=1; done
  check "after removing $victim, new connections go only to $other (${!after_hosts[*]})" \
    test "${!after_hosts[*]}" = "popbox/$other"
  wait "$slow"
  check "the established 16 MiB transfer on $victim completed (HTTP $(cat "$POPBOX_STATE/slow.code"))" \
    cmp -s "$POPBOX_STATE/slow.body" "$files/files/16M"
  for n in lb1 lb2; do ctl "$n" real add "$VIP4:443" "$vaddr" >/dev/null; done
  declare -A back=()
  for i in $(seq 30); do back[$(served_by "https://$VIP4/")]=1; done
  check "after re-adding $vaddr both hosts serve again" test -n "${back[popbox/$victim]:-}"
fi

# 5. Bad input to lbctl names itself and changes nothing.
before=$(reals_of lb1)
err=$(ctl lb1 real add "$VIP4:443" 10.0.3.300 2>&1)
check "lbctl real add with a bad real address fails and names it" \
  bash -c '[[ "$1" == *"10.0.3.300"* ]]' _ "$err"
err=$(ctl lb1 real add "192.0.2.1000:443" 10.0.3.2 2>&1)
check "lbctl real add with a bad VIP fails and names it" bash -c '[[ "$1" == *"192.0.2.1000"* ]]' _ "$err"
err=$(ctl lb1 real add "[$VIP6]:443" fd00:3::g 2>&1)
check "lbctl real add with a bad IPv6 real fails and names it" bash -c '[[ "$1" == *"fd00:3::g"* ]]' _ "$err"
err=$(ctl lb1 real set-weight "$VIP4:443" 10.0.9.9 2 2>&1)
check "lbctl set-weight of an unknown real says so" bash -c '[[ "$1" == *"no vip 192.0.2.10:443/tcp with real 10.0.9.9"* ]]' _ "$err"
check "bad input left the reals unchanged" test "$before" = "$(reals_of lb1)"


# 5b. A real of the other family than its VIP: [VIP6]:80 gets l7a's IPv4
#     address. Its probes and its clients' packets travel IPv6 in IPv4
#     (protocol 41) and l7a strips them; with the IPv6 reals out, every
#     request is served by l7a that way, then everything is put back.
in_ring() { # in_ring LB VIP-ADDRESS PORT REAL
  ctl "$1" --json real list | /usr/bin/python3 -c 'import json,sys
sys.exit(not any(r["vip"]["address"] == sys.argv[1] and r["vip"]["port"] == int(sys.argv[2]) and r["address"] == sys.argv[3] and r["in_ring"] for r in json.load(sys.stdin)))' "$2" "$3" "$4"
}
m0=$(decap_count l7a decap_mixed)
for n in lb1 lb2; do ctl "$n" real add "[$VIP6]:80" 10.0.3.2 >/dev/null; done
mixed_up() { in_ring lb1 "$VIP6" 80 10.0.3.2 && in_ring lb2 "$VIP6" 80 10.0.3.2; }
v6_reals_up() {
  for n in lb1 lb2; do for r in fd00:3::2 fd00:4::2; do in_ring "$n" "$VIP6" 80 "$r" || return 1; done; done
}
check "an IPv4 real of the IPv6 VIP [$VIP6]:80 passes its probes (IPv6 in IPv4) on both LBs" \
  wait_until 10 mixed_up
for n in lb1 lb2; do for r in fd00:3::2 fd00:4::2; do ctl "$n" real del "[$VIP6]:80" "$r" >/dev/null; done; done
served=$(for i in $(seq 20); do served_by "http://[$VIP6]/"; done | sort | uniq -c | awk '{print $1, $2}' | paste -sd' ')
m1=$(decap_count l7a decap_mixed)
check "with only the IPv4 real, 20 requests to http://[$VIP6]/ were all served by l7a ($served)" test "$served" = "20 popbox/l7a"
check "l7a stripped IPv6 in IPv4 ($m0 -> $m1 packets)" test $((m1 - m0)) -gt 60
for n in lb1 lb2; do
  for r in fd00:3::2 fd00:4::2; do ctl "$n" real add "[$VIP6]:80" "$r" >/dev/null; done
  ctl "$n" real del "[$VIP6]:80" 10.0.3.2 >/dev/null
done
check "[$VIP6]:80 has its IPv6 reals back" wait_until 10 v6_reals_up

# 6. A malformed request through the VIP gets a 400 and a close; others
#    keep being served.
resp=$(node client python3 - "$VIP4" <<'EOF'
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nNOT\x01HTTP\r\n\r\n")
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            out += b"<closed>"
            break
        out += d
except socket.timeout:
    out += b"<open>"
print(out.count(b"HTTP/1.1 200"), out.count(b"HTTP/1.1 400"), out.endswith(b"<closed>"))
EOF
)
check "malformed request: 200 for the good one, 400 for the bad, then close ($resp)" test "$resp" = "1 1 True"
check "the proxies keep serving after a malformed request" \
  bash -c 'test "$(ip netns exec '"$POPBOX_PREFIX"'-client curl -s -o /dev/null -w "%{http_code}" http://'"$VIP4"'/)" = 200'

# 7. HTTP/2 and gRPC through the VIPs, IPv4 and IPv6.
h2_hosts() { # h2_hosts URL CURL-OPTS...: "HTTP-version served-by" per request
  local url=$1; shift
  for i in $(seq 24); do
    cc "$@" -D - -o /dev/null -w '%{http_version}\n' "$url" | tr -d '\r' |
      awk -F': ' 'tolower($1)=="x-served-by"{by=$2} /^[0-9.]+$/{v=$1} END{print v, by}'
  done | sort -u | paste -sd' '
}
for url in "https://$VIP4/" "https://[$VIP6]/"; do
  got=$(h2_hosts "$url" --http2)
  check "curl --http2 $url gets HTTP/2 from both L7 hosts ($got)" \
    test "$got" = "2 popbox/l7a 2 popbox/l7b"
done
got=$(h2_hosts "http://$VIP4/h2c/" --http2-prior-knowledge)
check "prior-knowledge h2c on port 80 to an h2c cluster ($got)" test "$got" = "2 popbox/l7a 2 popbox/l7b"
got=$(h2_hosts "http://[$VIP6]/h2c/" --http1.1)
check "an HTTP/1.1 client reaches the h2c cluster ($got)" test "$got" = "1.1 popbox/l7a 1.1 popbox/l7b"
out=$(cc --http2 "https://$VIP4/h2/")
check "HTTP/2 over TLS to the backend, certificate verified ($out)" \
  test "$out" = "served by the backend over HTTP/2.0 and TLS"
out=$(node client timeout 120 h2load -c 8 -m 50 -n 8000 "https://$VIP4/" 2>&1)
check "h2load, 8 connections x 50 streams, 8000 requests: $(grep -o '[0-9]* succeeded, [0-9]* failed, [0-9]* errored' <<<"$out")" \
  grep -q "8000 succeeded, 0 failed, 0 errored" <<<"$out"
out=$(node client timeout 120 h2load -c 4 -m 50 -n 4000 "https://[$VIP6]/" 2>&1)
check "h2load over IPv6: $(grep -o '[0-9]* succeeded, [0-9]* failed, [0-9]* errored' <<<"$out")" \
  grep -q "4000 succeeded, 0 failed, 0 errored" <<<"$out"
h2sessions() { # HTTP/2 upstream connections the two proxies opened so far
  local t=0 n
  for n in l7a l7b; do
    t=$((t + $(curl -s --unix-socket "$POPBOX_STATE/run/$n-proxy.sock" http://x/v1/stats |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["upstream_h2_sessions"])')))
  done
  echo "$t"
}
before=$(h2sessions)
out=$(node client timeout 120 h2load -c 4 -m 50 -n 6000 "http://$VIP4/h2c/" 2>&1)
after=$(h2sessions)
# The h2c backend sends GOAWAY every 500 requests per connection: streams
# it did not take are retried on a new connection, none is lost.
check "h2load over h2c to an h2c backend that sends GOAWAY every 500 requests: $(grep -o '[0-9]* succeeded, [0-9]* failed, [0-9]* errored' <<<"$out"), $((after - before)) upstream connections" \
  bash -c 'grep -q "6000 succeeded, 0 failed, 0 errored" <<<"$1" && grep -q "status codes: 6000 2xx" <<<"$1" && [ "$2" -ge 10 ]' _ "$out" "$((after - before))"
want64=$(sha256sum < "$files/files/64M" | cut -d' ' -f1)
got=$(cc --http2 "https://$VIP4/files/64M" | sha256sum | cut -d' ' -f1)
check "64 MiB download over HTTP/2 (TLS, IPv4) intact" test "$want64" = "$got"
code=$(cc --http2 -T "$files/files/64M" -o /dev/null -w '%{http_code} %{http_version}' "https://[$VIP6]/uploads/h2up")
check "64 MiB upload over HTTP/2 (TLS, IPv6; $code) stored intact" cmp -s "$files/files/64M" "$files/uploads/h2up"
got=$(cc --http2-prior-knowledge "http://[$VIP6]/files/64M" | sha256sum | cut -d' ' -f1)
check "64 MiB download over h2c (IPv6) intact" test "$want64" = "$got"

# A slow HTTP/2 reader of a large body: the proxies' buffers stay bounded
# (per stream: a window in the stream's pipe, the connection's output).
buffered() { # bytes in the two proxies' buffers now
  local t=0 b
  for n in l7a l7b; do
    b=$(curl -s --unix-socket "$POPBOX_STATE/run/$n-proxy.sock" http://x/v1/stats |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["buffered_bytes"])') || return 1
    t=$((t + b))
  done
  echo "$t"
}
node client curl --cacert "$POPBOX_STATE/tls/ca.pem" -s --http2 --limit-rate 1M -m 4 \
  -o /dev/null "https://$VIP4/files/64M" &
slowpid=$!
peak=0
for i in $(seq 12); do
  sleep 0.25
  b=$(buffered) || { peak=-1; break; }
  [ "$b" -gt "$peak" ] && peak=$b
done
wait "$slowpid"
# Bytes must be seen in flight (else the measurement measured nothing).
check "a slow HTTP/2 reader of 64 MiB keeps the proxies' buffers under 512 KiB (peak $((peak / 1024)) KiB)" \
  test "$peak" -gt 0 -a "$peak" -le $((512 * 1024))

grpc() { node client env PORTICO_GRPC_STUBS_DIR="$POPBOX_STATE/grpc-stubs" timeout 120 \
  /usr/bin/python3 "$REPO/tests/grpc/interop_client.py" "$@"; }
cases=empty_unary,large_unary,client_streaming,server_streaming,ping_pong,empty_stream,cancel_after_begin,cancel_after_first_response,timeout_on_sleeping_server,status_code_and_message,custom_metadata,unimplemented_method
for target in "$VIP4:443" "[$VIP6]:443"; do
  out=$(grpc --target "$target" --ca "$POPBOX_STATE/tls/ca.pem" --cases "$cases" 2>&1)
  check "gRPC interop cases over TLS to $target: $(tail -1 <<<"$out")" \
    grep -q "^12 passed, 0 failed" <<<"$out"
  grep "^not ok" <<<"$out" || true
done
out=$(grpc --target "[$VIP6]:443" --ca "$POPBOX_STATE/tls/ca.pem" \
  --events "$POPBOX_STATE/log/backend.grpc-events.log" \
  --cases proxy_deadline_propagated,proxy_default_deadline,proxy_max_deadline,proxy_cancel_reaches_backend 2>&1)
for c in deadline_propagated default_deadline max_deadline cancel_reaches_backend; do
  check "gRPC rule at the proxy: $c ($(grep "proxy_$c" <<<"$out" | sed 's/^[a-z ]*- //'))" \
    grep -q "^ok - proxy_$c" <<<"$out"
done
out=$(grpc --target "$VIP4:80" --cases "$cases" 2>&1)
check "gRPC interop cases over h2c to $VIP4:80: $(tail -1 <<<"$out")" grep -q "^12 passed, 0 failed" <<<"$out"
resp=$(cc -D - -H 'content-type: application/grpc' --data-binary x "http://$VIP4/grpc.testing.TestService/EmptyCall" | tr -d '\r')
check "a gRPC request over HTTP/1.1 gets a clear error (426, not HTML)" \
  bash -c 'grep -q "^HTTP/1.1 426" <<<"$1" && grep -q "gRPC needs HTTP/2" <<<"$1"' _ "$resp"
# A stopped backend: UNAVAILABLE at once, not a hang.
for p in $(ip netns pids "$POPBOX_PREFIX-backend"); do
  grep -q interop_server "/proc/$p/cmdline" 2>/dev/null && kill -TERM "$p"
done
sleep 0.5
for p in $(ip netns pids "$POPBOX_PREFIX-backend"); do
  grep -q interop_server "/proc/$p/cmdline" 2>/dev/null && kill -KILL "$p"
done
out=$(grpc --target "$VIP4:443" --ca "$POPBOX_STATE/tls/ca.pem" --expect-code UNAVAILABLE --timeout 10 2>&1)
check "a gRPC call to a stopped backend gets UNAVAILABLE ($(grep -o 'after [0-9.]*s' <<<"$out" | head -1))" \
  grep -q "^1 passed" <<<"$out"
# [VIP6]:443 is checked with grpc.health.v1 through the proxies: with the
# gRPC backend gone its reals fail, and the LBs withdraw the address.
v6_routed() { [ -n "$(node router ip -6 route show "$VIP6/128")" ]; }
v6_withdrawn() { ! v6_routed; }
check "the gRPC health checks withdrew $VIP6 from the router" wait_until 10 v6_withdrawn
"$POPBOX" daemon start backend grpc
check "and announced it again once the gRPC backend was back" wait_until 20 v6_routed

# 7b. Binary upgrade of both L7 hosts' proxies under load through the VIP
#     (XDP, IPIP, DSR): HTTP/1.1 over TLS from h2load, HTTP/2 and HTTP/1.1
#     over TLS from drain_client.py (which, unlike h2load, does not count
#     requests it queued but never sent after a GOAWAY as failed: nghttp2
#     refuses to send them) and gRPC unary calls from grpcio fail nothing,
#     nor is a connection refused, and a gRPC stream in flight
#     across both upgrades finishes (popbox drains for 2 s: it is shorter).
#     The interop cases above leave the gRPC backends out by passive health
#     for a few seconds (cancelled and timed-out calls): wait for them.
grpc_healthy() {
  local n
  for n in l7a l7b; do
    "$POPBOX_BUILD/ctl/lbctl" -p "$POPBOX_STATE/run/$n-proxy.sock" upstream list grpc |
      tail -n +2 | grep -qv " healthy " && return 1
  done
  return 0
}
wait_until 15 grpc_healthy || echo "# the gRPC backends are still out"
node client timeout 60 /usr/bin/python3 "$REPO/tests/e2e/drain_client.py" "$VIP4:443" \
  --ca "$POPBOX_STATE/tls/ca.pem" --h1 2 --h2 4 --streams 4 --duration 8 > "$POPBOX_STATE/upg.dc" 2>&1 &
u1=$!
node client timeout 60 h2load --h1 -c 4 -D 8 "https://$VIP4/" > "$POPBOX_STATE/upg.h1" 2>&1 &
u2=$!
gload() { node client env PORTICO_GRPC_STUBS_DIR="$POPBOX_STATE/grpc-stubs" timeout 60 \
  /usr/bin/python3 "$REPO/tests/grpc/grpc_load.py" "$VIP4:443" --ca "$POPBOX_STATE/tls/ca.pem" "$@"; }
gload --duration 8 --threads 2 > "$POPBOX_STATE/upg.grpc" 2>&1 &
u3=$!
sleep 2
gload --duration 0 --threads 0 --stream-count 10 --stream-interval-ms 150 \
  > "$POPBOX_STATE/upg.stream" 2>&1 &
u4=$!
sleep 0.3
for n in l7a l7b; do
  out=$("$POPBOX_BUILD/ctl/lbctl" -p "$POPBOX_STATE/run/$n-proxy.sock" proxy upgrade 2>&1)
  check "$n: lbctl proxy upgrade under load through the VIP ($out)" grep -q "took over" <<<"$out"
done
wait "$u1" "$u2" "$u3" "$u4"
out=$(cat "$POPBOX_STATE/upg.h1")
check "h2load h1 over TLS through the VIP during both upgrades: $(grep -o '[0-9]* succeeded, [0-9]* failed, [0-9]* errored' <<<"$out")" \
  grep -qE "requests: [0-9]+ total, [0-9]+ started, [0-9]+ done, [1-9][0-9]+ succeeded, 0 failed, 0 errored, 0 timeout" <<<"$out"
out=$(tail -1 "$POPBOX_STATE/upg.dc")
check "HTTP/2 and HTTP/1.1 over TLS through the VIP during both upgrades: nothing failed or refused ($out)" \
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["h1"]["failed"] + d["h2"]["failed"] + d["h1"]["refused"] + d["h2"]["refused"] == 0 and d["h1"]["ok"] > 100 and d["h2"]["ok"] > 100))' "$out"
out=$(tail -1 "$POPBOX_STATE/upg.grpc")
check "gRPC unary calls over TLS through the VIP during both upgrades: none failed ($out)" \
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["unary_failed"] + d["unary_unavailable"] == 0 and d["unary_ok"] > 50))' "$out"
out=$(tail -1 "$POPBOX_STATE/upg.stream")
check "a gRPC stream in flight across both upgrades finished ($out)" \
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["stream_status"] == "OK" and d["stream_responses"] == 10))' "$out"

# 7c. The decap takes encapsulation from the LBs only: IPIP from the client
#     straight to l7a (inner packet for the VIP) is dropped and counted,
#     never reaches the proxy; the VIP still works through the LBs.
untrusted() { decap_count l7a drop_untrusted_source; }
u0=$(untrusted)
node client /usr/bin/python3 -c '
import socket, struct
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
def ip4(s):
    return socket.inet_aton(s)
udp = struct.pack("!HHHH", 40000, 80, 8 + 5, 0) + b"spoof"
hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                  ip4("198.51.100.9"), ip4("192.0.2.10"))
hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
for _ in range(20):
    s.sendto(hdr + udp, ("10.0.3.2", 0))
'
sleep 0.3
u1=$(untrusted)
check "IPIP to l7a from a host that is not an LB is dropped and counted (drop_untrusted_source $u0 -> $u1)" \
  test "$u1" -ge $((u0 + 20))
code=$(cc -o /dev/null -w '%{http_code}' "https://$VIP4/")
check "... while the VIP works through the LBs (HTTP $code)" test "$code" = 200

# 8. HTTP/2 attacks through the VIPs: each offending connection is
#    repelled (GOAWAY or closed) and counted, while other clients keep
#    being served.
abuse() { # GOAWAYs for abuse counted by both proxies
  local t=0 n
  for n in l7a l7b; do
    t=$((t + $(curl -s --unix-socket "$POPBOX_STATE/run/$n-proxy.sock" http://x/v1/stats |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["h2_goaway_abuse"])')))
  done
  echo "$t"
}
attack() { # attack TARGET ATTACK [ARGS...]: prints the attack's JSON line
  node client timeout 40 /usr/bin/python3 "$REPO/tests/e2e/h2attack.py" --target "$1" --tls \
    --ca "$POPBOX_STATE/tls/ca.pem" --time-limit 10 "${@:2}"
}
abuse0=$(abuse)
node client timeout 60 h2load -c 4 -m 10 -D 20 "https://$VIP4/" > "$POPBOX_STATE/good.h2load" 2>&1 &
goodpid=$!
attack "$VIP4:443" slow_headers --time-limit 20 > "$POPBOX_STATE/slow_headers.json" &
slowhdr=$!
sleep 1
n_abuse=0
for a in "rapid_reset" "continuation_flood --variant fragments" "continuation_flood --variant empty" \
  "hpack_bomb --variant one_block" "oversized_headers" "settings_flood --variant read" \
  "settings_flood --variant noread" "ping_flood --variant read" "ping_flood --variant noread" \
  "empty_data_flood" "window_update_flood" "madeyoureset --variant mix" \
  "madeyoureset --variant data_closed" "hpack_bomb --variant many_blocks"; do
  for target in "$VIP4:443" "[$VIP6]:443"; do
    # shellcheck disable=SC2086 # the attack and its variant are two words
    out=$(attack "$target" $a)
    check "HTTP/2 $a to $target repelled ($(/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("GOAWAY %s" % d["goaway_error"] if d.get("goaway") else "closed", "after %s s, %d frames" % (d["elapsed_s"], d["frames_sent"]))' <<<"$out" 2>&1))" \
      grep -q '"repelled": true' <<<"$out"
  done
  case "$a" in madeyoureset*|"hpack_bomb --variant many_blocks") ;; *) n_abuse=$((n_abuse + 2)) ;; esac
done
wait "$slowhdr"
out=$(cat "$POPBOX_STATE/slow_headers.json")
check "HTTP/2 slow header block (a CONTINUATION byte a second) cut by the head deadline ($(grep -o '"elapsed_s": [0-9.]*' <<<"$out"))" \
  grep -q '"repelled": true' <<<"$out"
wait "$goodpid"
out=$(cat "$POPBOX_STATE/good.h2load")
check "meanwhile another client's requests all succeeded ($(grep -o '[0-9]* succeeded, [0-9]* failed, [0-9]* errored' <<<"$out"))" \
  bash -c 'grep -qE "requests: [0-9]+ total, [0-9]+ started, [0-9]+ done, [1-9][0-9]* succeeded, 0 failed, 0 errored, 0 timeout" <<<"$1" && grep -qE "status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx" <<<"$1"' _ "$out"
check "the proxies counted the abuse (h2_goaway_abuse +$(($(abuse) - abuse0)), at least $n_abuse)" \
  test "$(($(abuse) - abuse0))" -ge "$n_abuse"

# 9a. The GSLB: gslbd on the dns node answers the client by subnet from the
#     map gslb-map built for this PoP and the others; the answer for a
#     subnet whose first choice is this PoP carries real traffic; a drain
#     of this PoP moves that subnet to its next PoP, an undrain back.
gmap=$POPBOX_STATE/gslb/map.bin
kd() { node client kdig +time=2 +retry=1 "$@"; }
# Subnets of the samples, and what gslb-map's own lookup of the file says.
grep -E '^[0-9.]+,' "$POPBOX_STATE/gslb/samples.csv" | cut -d, -f1 | sort -u |
  sed 's/\.[0-9]*$/.0\/24/' | sort -u | head -400 > "$POPBOX_STATE/gslb/subnets"
xargs "$POPBOX_BUILD/gslb/mapbuild/gslb-map" lookup "$gmap" < "$POPBOX_STATE/gslb/subnets" \
  > "$POPBOX_STATE/gslb/expected" 2>/dev/null
home=$(grep -m1 ' pops=popbox,' "$POPBOX_STATE/gslb/expected" | awk '{print $1}')
away=$(grep -m1 ' pops=[a-oq-z][a-z]*' "$POPBOX_STATE/gslb/expected" | awk '{print $1}')
next=$(grep -m1 "^$home " "$POPBOX_STATE/gslb/expected" | sed 's/.*pops=popbox,\([a-z]*\).*/\1/')
check "the map sends some subnets here ($home) and some elsewhere ($away)" \
  test -n "$home" -a -n "$away" -a -n "$next"
got=$(kd @192.0.2.53 www.example.test A "+subnet=$home" +short)
check "kdig +subnet=$home over UDP: this PoP's VIP ($got)" test "$got" = "$VIP4"
got=$(kd @2001:db8::53 +tcp www.example.test AAAA "+subnet=$home" +short)
check "kdig over TCP from IPv6: this PoP's IPv6 VIP ($got)" test "$got" = "$VIP6"
got=$(kd @192.0.2.53 www.example.test A "+subnet=$away" +short)
check "kdig +subnet=$away: another PoP's VIP ($got)" bash -c '[[ $1 == 198.51.100.* ]]' _ "$got"
xq=$(node dns env LBCTL_GSLB_SOCKET="$POPBOX_STATE/run/gslbd.sock" "$POPBOX_BUILD/ctl/lbctl" \
  gslb metrics | awk '/^gslbd_queries_total\{transport="xdp"\}/ { print $2 }')
check "the UDP queries reached gslbd through AF_XDP (${xq:-no} counted)" test "${xq:-0}" -ge 2
ans=$(kd @192.0.2.53 www.example.test A "+subnet=$home" +short)
code=$(cc -o /dev/null -w '%{http_code}' "http://$ans/")
check "the answer carries traffic: http://$ans/ through the PoP ($code)" test "$code" = 200
node dns env LBCTL_GSLB_SOCKET="$POPBOX_STATE/run/gslbd.sock" "$POPBOX_BUILD/ctl/lbctl" \
  gslb pop drain popbox >/dev/null
got=$(kd @192.0.2.53 www.example.test A "+subnet=$home" +short)
want=$(grep "name = \"$next\"" "$POPBOX_STATE/conf/dns-gslbd.conf" | grep -o 'vip4 = "[0-9.]*"' |
  cut -d'"' -f2)
check "popbox drained: $home moves to its next PoP $next ($got)" test "$got" = "$want"
"$POPBOX" exec dns lbctl gslb pop undrain popbox >/dev/null
got=$(kd @192.0.2.53 www.example.test A "+subnet=$home" +short)
check "undrained: back to this PoP ($got)" test "$got" = "$VIP4"

# 9. No sanitizer report in any daemon's log (the suite runs the daemons
#    from the ASan+UBSan build).
check "no AddressSanitizer/UBSan report in daemon logs" \
  bash -c '! grep -lE "ERROR: AddressSanitizer|runtime error:" "$1"/log/*.log' _ "$POPBOX_STATE"

# 10. status, then down leaves nothing behind.
check "popbox status reports 8 namespaces" bash -c '"$1" status | grep -q "namespaces: 8/8"' _ "$POPBOX"
"$POPBOX" down >/dev/null 2>&1
check "popbox down removed every namespace" bash -c '! ip netns list | grep -q "^$1-"' _ "$POPBOX_PREFIX"
check "popbox down stopped every process" bash -c '! pgrep -f "$1/" >/dev/null' _ "$POPBOX_STATE"
check "popbox down removed the demo files" test ! -e "$files"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
