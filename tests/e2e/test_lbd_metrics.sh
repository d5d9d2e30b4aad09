#!/usr/bin/env bash
# End-to-end: lbd's Prometheus metrics (GET /metrics), on the real daemon
# (role l4lb, XDP attached to a veth) with a namespace on the other end
# that is client, BGP router (BIRD) and L7 host (a second lbd, role l7,
# decapsulating what the balancer sends it) at once.
#
#   tests/e2e/test_lbd_metrics.sh [BUILD_DIR]     (default: build)
#
# - A bad metrics_listen is a config error naming file and line.
# - `promtool check metrics` accepts the page, from the admin socket
#   (lbctl metrics) and from the TCP listener (metrics_listen).
# - The TCP listener serves /metrics and nothing else of the API.
# - Counters follow traffic: after N datagrams to a VIP, its packet counter
#   and its real's rose by at least N, and the L7 lbd's decap counter too.
# - Health (a checked real that fails, an unchecked one) and BGP (an
#   Established session with one prefix, a neighbour that never answers)
#   read as /v1/vips and /v1/bgp/neighbors say.
# - A reload that changes metrics_listen is refused.
# Exits 77 without root or promtool; cleans up on any exit (KEEP=1 keeps a
# copy of the pages and logs).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
NS=lbm$$ NSC=lbmc$$
D=$(mktemp -d /tmp/portico-lbdm.XXXXXX)
N=500
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
[ "$(id -u)" -eq 0 ] || { echo "skipped: network namespaces and XDP need root"; exit 77; }
command -v promtool > /dev/null || { echo "skipped: no promtool (Debian package prometheus)"; exit 77; }
cleanup() {
  local n p
  for n in "$NS" "$NSC"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$n" 2>/dev/null
  done
  [ -n "${KEEP:-}" ] && cp -r "$D" "$D.kept" && echo "pages and logs kept in $D.kept"
  rm -rf "$D"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
nsc() { ip netns exec "$NSC" "$@"; }
passed=0 failed=0
check() { local n=$1; shift; if "$@"; then echo "ok - $n"; passed=$((passed + 1)); else echo "not ok - $n"; failed=$((failed + 1)); fi; }
ms() { date +%s%3N; }
wait_until() { # wait_until SECONDS CMD...: poll every 100 ms
  local end=$(($(ms) + $1 * 1000)); shift
  while [ "$(ms)" -lt "$end" ]; do "$@" && return 0; sleep 0.1; done
  return 1
}

ip netns add "$NS"
ip netns add "$NSC"
nsx ip link set lo up
nsc ip link set lo up
nsx ip link add lbt0 type veth peer name lbt1 netns "$NSC"
nsx ip link set lbt0 up
nsx ip addr add 10.9.0.1/24 dev lbt0
nsx sysctl -qw net.ipv4.ip_forward=1 # the balancer's FIB lookup needs it
nsc ip link set lbt1 up
nsc ip addr add 10.9.0.2/24 dev lbt1
nsc ip route add 192.0.2.0/24 via 10.9.0.1

# lbd's config: a UDP VIP without checks (its real serves at once) and a
# TCP VIP whose real never answers its probes (no decap on the far side).
conf() { # conf METRICS_LISTEN
  cat <<EOF
role = "l4lb"; host = "m"; interface = "lbt0"; xdp_mode = "generic"; pin_dir = "";
admin_socket = "$D/lbd.sock";
metrics_listen = "$1";
vips = (
  { address = "192.0.2.1"; port = 5353; proto = "udp"; reals = ( { address = "10.9.0.2"; } ); },
  { address = "192.0.2.2"; port = 80; reals = ( { address = "10.9.0.2"; weight = 3; } );
    health = { interval_ms = 200; timeout_ms = 100; }; }
);
bgp = {
  asn = 65001; connect_retry_ms = 500;
  neighbors = ( { address = "10.9.0.2"; asn = 65000; hold_time = 9; },
                { address = "10.9.0.99"; asn = 65000; description = "never answers"; } );
};
EOF
}

# Refused at load: no port, a name, a bad port; each names file and line.
for bad in 10.9.0.1 localhost:9101 10.9.0.1:99999 '[::1]' 2001:db8::1:9101; do
  conf "$bad" > "$D/bad.conf"
  out=$("$BUILD/ctl/lbd" --check -c "$D/bad.conf" 2>&1)
  check "metrics_listen \"$bad\" refused ($out)" \
    bash -c '[[ "$1" == *"bad.conf:3: metrics_listen \"$2\": expected IP:PORT"* ]]' _ "$out" "$bad"
done

cat > "$D/bird.conf" <<EOF
router id 10.9.0.2;
protocol device { }
protocol bgp lb {
  local 10.9.0.2 as 65000; neighbor 10.9.0.1 as 65001;
  passive on; hold time 9; keepalive time 3;
  ipv4 { import all; export none; };
}
EOF
nsc bird -f -c "$D/bird.conf" -s "$D/bird.ctl" -P "$D/bird.pid" > "$D/bird.log" 2>&1 &
conf 10.9.0.1:9101 > "$D/lbd.conf"
nsx "$BUILD/ctl/lbd" -c "$D/lbd.conf" > "$D/lbd.log" 2>&1 &
# The L7 side: decap on lbt1, no VIP on lo (the client sends to the VIPs
# from this namespace and must reach the balancer). So its decap takes
# none of the encapsulated packets: their inner destination is not one of
# its VIPs. They are counted as dropped for that reason.
cat > "$D/l7.conf" <<EOF
role = "l7"; host = "l7"; interface = "lbt1"; admin_socket = "$D/l7.sock";
EOF
nsc "$BUILD/ctl/lbd" -c "$D/l7.conf" > "$D/l7.log" 2>&1 &
wait_until 10 test -S "$D/lbd.sock"
wait_until 10 test -S "$D/l7.sock"
ctl() { nsx "$BUILD/ctl/lbctl" -s "$D/lbd.sock" "$@"; }
# The value of one series in a page (the exact text before the value).
val() { awk -v s="$2" 'index($0, s " ") == 1 { print $2; f = 1 } END { if (!f) print -1 }' "$1"; }

ctl metrics > "$D/m0" 2> "$D/m0.err"
check "lbctl metrics prints the page ($(wc -l < "$D/m0") lines)" grep -q '^# TYPE portico_lbd_vip_packets_total counter$' "$D/m0"
# promtool's lint (names, units, _total, HELP) must find nothing either.
promtool_ok() { # promtool_ok PAGE: exit 0 and no complaint
  promtool check metrics < "$1" > "$1.promtool" 2>&1 && [ ! -s "$1.promtool" ]
}
check "promtool check metrics accepts it $(promtool_ok "$D/m0" || head -c 300 "$D/m0.promtool")" promtool_ok "$D/m0"

# Over TCP, from the other namespace: the metrics, and only them.
code=$(nsc curl -s -o "$D/mt" -w '%{http_code} %{content_type}' http://10.9.0.1:9101/metrics)
check "metrics_listen serves /metrics ($code)" test "$code" = "200 text/plain; version=0.0.4; charset=utf-8"
check "promtool accepts the TCP page too $(promtool_ok "$D/mt" || head -c 300 "$D/mt.promtool")" promtool_ok "$D/mt"
code=$(nsc curl -s -o /dev/null -w '%{http_code}' http://10.9.0.1:9101/v1/status)
check "but not the rest of the API (GET /v1/status: $code)" test "$code" = 404
code=$(nsc curl -s -o /dev/null -w '%{http_code}' -X POST http://10.9.0.1:9101/v1/shutdown)
sleep 0.2
check "nor POST /v1/shutdown ($code), lbd still running" test "$code" = 404 -a -n "$(ctl status 2>/dev/null)"

# Counters follow traffic.
vip='portico_lbd_vip_packets_total{vip="192.0.2.1:5353/udp"}'
real='portico_lbd_real_packets_total{real="10.9.0.2"}'
rx='portico_lbd_xdp_rx_packets_total'
v0=$(val "$D/m0" "$vip") r0=$(val "$D/m0" "$real") x0=$(val "$D/m0" "$rx")
l7() { nsc "$BUILD/ctl/lbctl" -s "$D/l7.sock" "$@"; }
decap='portico_lbd_decap_dropped_packets_total{reason="not_vip"}'
l7 metrics > "$D/l7m0"
d0=$(val "$D/l7m0" "$decap")
nsc /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b"metrics %05d" % i, ("192.0.2.1", 5353))' "$N"
sleep 0.3
ctl metrics > "$D/m1"
v1=$(val "$D/m1" "$vip") r1=$(val "$D/m1" "$real") x1=$(val "$D/m1" "$rx")
check "the VIP's packet counter rose by at least $N ($v0 -> $v1)" test "$v0" -ge 0 -a "$v1" -ge $((v0 + N))
check "its real's too ($r0 -> $r1)" test "$r0" -ge 0 -a "$r1" -ge $((r0 + N))
check "and rx ($x0 -> $x1)" test "$x1" -ge $((x0 + N))
bytes=$(val "$D/m1" 'portico_lbd_vip_bytes_total{vip="192.0.2.1:5353/udp"}')
# A frame: Ethernet 14 + IPv4 20 + UDP 8 + 13 bytes of payload.
check "VIP bytes count whole frames ($bytes >= $N x 55)" test "$bytes" -ge $((N * 55))
t='portico_lbd_xdp_tx_packets_total'
check "and were encapsulated toward the real ($(val "$D/m0" "$t") -> $(val "$D/m1" "$t"))" \
  test "$(val "$D/m1" "$t")" -ge $(($(val "$D/m0" "$t") + N))
l7 metrics > "$D/l7m1"
d1=$(val "$D/l7m1" "$decap")
check "the L7 lbd's decap saw them and refused them: not for its VIPs ($decap: $d0 -> $d1)" test "$d0" -ge 0 -a "$d1" -ge $((d0 + N))
check "its page: build info for role l7" grep -q '^portico_build_info{daemon="lbd",version="[^"]*",role="l7"} 1$' "$D/l7m1"
check "promtool accepts the L7 page $(promtool_ok "$D/l7m1" || head -c 300 "$D/l7m1.promtool")" promtool_ok "$D/l7m1"

# Health and BGP, once the checks have failed and the session is up.
up='portico_lbd_bgp_session_up{neighbor="10.9.0.2"}'
page_has() { ctl metrics > "$D/m2" && [ "$(val "$D/m2" "$1")" = "$2" ]; }
wait_until 15 page_has "$up" 1
check "BGP session with BIRD up ($up $(val "$D/m2" "$up"))" test "$(val "$D/m2" "$up")" = 1
wait_until 5 page_has 'portico_lbd_bgp_prefixes_announced{neighbor="10.9.0.2"}' 1
check "one prefix announced (the UDP VIP's address; the TCP VIP has no healthy real)" \
  test "$(val "$D/m2" 'portico_lbd_bgp_prefixes_announced{neighbor="10.9.0.2"}')" = 1
check "state one-hot: established for BIRD" \
  test "$(val "$D/m2" 'portico_lbd_bgp_session_state{neighbor="10.9.0.2",state="established"}')" = 1
states=$(grep -c '^portico_lbd_bgp_session_state{neighbor="10.9.0.99",state="[a-z]*"} 1$' "$D/m2")
check "exactly one state at 1 for the silent neighbour ($states), and it is down" \
  test "$states" = 1 -a "$(val "$D/m2" 'portico_lbd_bgp_session_up{neighbor="10.9.0.99"}')" = 0
check "UPDATEs sent to BIRD counted" \
  test "$(val "$D/m2" 'portico_lbd_bgp_messages_sent_total{neighbor="10.9.0.2",type="update"}')" -ge 1
tcp='vip="192.0.2.2:80/tcp",real="10.9.0.2"'
udp='vip="192.0.2.1:5353/udp",real="10.9.0.2"'
check "the failing real is unhealthy and out of the ring, weight 3" \
  test "$(val "$D/m2" "portico_lbd_real_healthy{$tcp}")$(val "$D/m2" "portico_lbd_real_in_ring{$tcp}")$(val "$D/m2" "portico_lbd_real_weight{$tcp}")" = 003
check "its failed probes are counted ($(val "$D/m2" "portico_lbd_health_probes_total{$tcp,result=\"failed\"}"))" \
  test "$(val "$D/m2" "portico_lbd_health_probes_total{$tcp,result=\"failed\"}")" -ge 2
check "the unchecked real is healthy and in the ring" \
  test "$(val "$D/m2" "portico_lbd_real_healthy{$udp}")$(val "$D/m2" "portico_lbd_real_in_ring{$udp}")" = 11
check "promtool accepts the page with BGP and health $(promtool_ok "$D/m2" || head -c 300 "$D/m2.promtool")" promtool_ok "$D/m2"
dups=$(grep -v '^#' "$D/m2" | sed 's/ [^ ]*$//' | sort | uniq -d | head -3)
check "no series twice${dups:+ ($dups)}" test -z "$dups"

# metrics_listen is bound at start: a reload that moves it is refused.
conf 10.9.0.1:9102 > "$D/lbd.conf"
out=$(ctl reload 2>&1)
check "a reload moving metrics_listen is refused ($out)" \
  bash -c '[[ "$1" == *"metrics_listen needs a restart"* ]]' _ "$out"
check "and the listener keeps serving" nsc curl -sf -o /dev/null http://10.9.0.1:9101/metrics
check "no sanitizer report" bash -c '! grep -qE "ERROR: AddressSanitizer|runtime error:" "$1" "$2"' _ "$D/lbd.log" "$D/l7.log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
