#!/usr/bin/env bash
# End-to-end: path MTU discovery through the VIPs, and next hops that
# follow the network. A whole PoP (deploy/popbox, with its own namespace
# prefix and state directory):
#
# 1. The router's link toward the client is narrowed to 1280 bytes while
#    the client keeps 1500 (it advertises MSS 1460 / 1440, so only PMTUD
#    can make large replies fit). The L7 host sends the reply from the VIP
#    (DSR); the router's "fragmentation needed" / "packet too big" goes to
#    the VIP, the LB's XDP steers it by the quoted flow to that L7 host
#    (IPIP / IP6IP6 / GUE), whose TCP lowers its segment size. 64 MiB over
#    IPv4 and over IPv6, HTTP and HTTPS, must arrive whole, in bounded time.
# 2. The router's interfaces toward the LBs (the next hop the LBs' XDP
#    writes as destination MAC toward the reals) change MAC and announce
#    it, as a replaced router does (gratuitous ARP, unsolicited NA): the
#    LBs' kernels relearn the neighbour, lbd's next-hop cache follows
#    without a restart, requests keep succeeding and the FIB fallback does
#    not carry the traffic.
# 3. Control: with the router's ICMP errors to the VIPs lost (as before
#    the LB steered them), the same downloads stall, so part 1 measured
#    PMTUD and nothing else.
#
# Spoofed IPIP to an L7 host (the decap's source check) is covered by
# tests/e2e/test_pop.sh (7c), not repeated here.
#
#   tests/e2e/test_pmtu.sh [BUILD_DIR]
#
# Exits 77 (skipped) without root. Cleans up on any exit.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
export POPBOX_BUILD=${1:-${POPBOX_BUILD:-$REPO/build}}
export POPBOX_PREFIX=pmtu$$
POPBOX_STATE=$(mktemp -d /tmp/portico-pmtu.XXXXXX)
export POPBOX_STATE
export POPBOX_MAX_FILE_MB=64
export POPBOX_NO_BUILD=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
POPBOX=$REPO/deploy/popbox
VIP4=192.0.2.10
VIP6=2001:db8::10
CLIENT4=203.0.113.2
CLIENT6=2001:db8:c::2
export S=$POPBOX_STATE

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: network namespaces, XDP and BGP on port 179 need root"
  exit 77
fi

# shellcheck source=tests/e2e/tap.sh
. "$REPO/tests/e2e/tap.sh"
# Sets the EXIT trap that takes the PoP down and removes its state.
# shellcheck source=tests/e2e/popbox_lib.sh
. "$REPO/tests/e2e/popbox_lib.sh"
trap 'exit 143' INT TERM

size64=$((64 * 1024 * 1024))

# A global XDP counter (packets) summed over both LBs; "none" from an lbd
# that does not have it.
gsum() {
  local t=0 n v
  for n in lb1 lb2; do
    v=$(ctl "$n" --json stats | json "d['global']['$1']['packets']" 2>/dev/null) || { echo none; return 1; }
    t=$((t + v))
  done
  echo "$t"
}
# B - A when both are counts, else "?".
delta() { if [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]]; then echo $(($2 - $1)); else echo "?"; fi; }
# The same from the Prometheus page (lbctl metrics), summed over both LBs.
msum() { # msum 'METRIC{LABELS}'
  local n
  for n in lb1 lb2; do ctl "$n" metrics; done |
    awk -v m="$1" 'index($0, m " ") == 1 {t += $2} END {printf "%d\n", t}'
}
# The router's IPv4 or IPv6 "fragmentation failed" count (packets it could
# not forward for their size: each is an ICMP error it sends).
fragfails() {
  node router awk '$1 == "Ip:" && !h {for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next}
    $1 == "Ip:" {v4 = $c["FragFails"]} END {print v4}' /proc/net/snmp
}
fragfails6() { node router awk '$1 == "Ip6FragFails" {print $2}' /proc/net/snmp6; }
# The reals' cached next hops in an LB's pinned reals_map, one per line:
# "real-id dmac ifindex mtu" for every configured real.
nh_cache() {
  local m
  m=$(find "$S/bpf/$1" -name reals_map 2>/dev/null | sort -V | tail -1)
  [ -n "$m" ] || return 1
  bpftool -j map dump pinned "$m" 2>/dev/null | json '"\n".join("%d %s %d %d" % (e["formatted"]["key"],
    ":".join("%02x" % b for b in e["formatted"]["value"]["nh_dmac"]),
    e["formatted"]["value"]["nh_ifindex"], e["formatted"]["value"]["nh_mtu"])
    for e in d if e["formatted"]["value"]["family"])' 2>/dev/null
}
mac_of() { node "$1" cat "/sys/class/net/$2/address"; }
# Every configured real of LB has a cached next hop with destination MAC.
cache_is() { # cache_is LB MAC
  local c
  c=$(nh_cache "$1") && [ -n "$c" ] && awk -v m="$2" '$2 != m || $3 == 0 {bad = 1} END {exit bad}' <<<"$c"
}
neigh_mac() { # neigh_mac NODE ADDR: the lladdr of ADDR in NODE's neighbour table
  node "$1" ip -j neigh show to "$2" | json '(d[0].get("lladdr", "") if d else "")'
}
# LB's next hops toward the reals (IPv4, IPv6) resolve to MAC, in its
# kernel and in lbd's cache.
nexthop_is() { # nexthop_is LB MAC
  [ "$(neigh_mac "$1" "${gw4[$1]}")" = "$2" ] && [ "$(neigh_mac "$1" "${gw6[$1]}")" = "$2" ] &&
    cache_is "$1" "$2"
}

t_start=$(ms)
if ! "$POPBOX" up --quiet --no-traffic; then
  echo "not ok - popbox up"
  for f in "$S"/log/*.log; do echo "== $f"; tail -5 "$f"; done
  echo "0 passed, 1 failed"
  exit 1
fi
ok "popbox up ($POPBOX_PREFIX-*, $(($(ms) - t_start)) ms)"
check "the router has both VIPs over both LBs" wait_until 10 both_lbs

# 1. PMTUD through the VIPs.
node router ip link set dev r-client mtu 1280
check "the router's link toward the client is 1280 bytes ($(node router cat /sys/class/net/r-client/mtu)), the client's own 1500 ($(node client cat /sys/class/net/eth0/mtu))" \
  test "$(node router cat /sys/class/net/r-client/mtu)" = 1280 -a "$(node client cat /sys/class/net/eth0/mtu)" = 1500

download() { # download FAMILY URL CLIENT-ADDR VIP PORT
  local fam=$1 url=$2 caddr=$3 vip=$4 port=$5 filter mss tp s0 s1 out code size secs by l7 route h
  if [ "$fam" = 4 ]; then
    filter="ip and tcp[13] & 0x12 == 0x02 and dst port $port"
    mss=1460
  else
    filter="ip6 and ip6[6] == 6 and ip6[53] & 0x12 == 0x02 and dst port $port"
    mss=1440
  fi
  # Each download learns the path MTU afresh.
  for h in l7a l7b; do node "$h" ip "-$fam" route flush cache; done
  # The client's SYN as the router sees it: the MSS it advertises.
  tp=
  if command -v tcpdump >/dev/null; then
    node router timeout 30 tcpdump -i r-client -nn -l -c 1 "$filter" > "$S/syn$fam" 2>&1 &
    tp=$!
    wait_until 5 grep -q "listening on" "$S/syn$fam"
  fi
  s0=$(gsum icmp_steered)
  out=$(cc -m 30 -D "$S/dl$fam.headers" -o "$S/dl$fam.body" \
    -w '%{http_code} %{size_download} %{time_total}' "$url")
  s1=$(gsum icmp_steered)
  [ -n "$tp" ] && wait "$tp"
  read -r code size secs <<<"$out"
  by=$(tr -d '\r' < "$S/dl$fam.headers" | awk -F': ' 'tolower($1)=="x-served-by"{print $2}')
  l7=${by#popbox/}
  if [ -n "$tp" ]; then
    check "${url%%:*}/IPv$fam: the client advertised MSS $mss in its SYN ($(grep -o 'mss [0-9]*' "$S/syn$fam" | head -1))" \
      grep -q "mss $mss," "$S/syn$fam"
  else
    echo "# no tcpdump: the client's MSS ($mss, from its 1500-byte link) is not read from its SYN"
  fi
  check "${url%%:*}/IPv$fam: 64 MiB from $url through a 1280-byte hop: HTTP ${code:-none}, $size bytes in ${secs:-?} s (limit 30 s), served by ${by:-?}" \
    test "$code" = 200 -a "$size" = "$size64"
  check "${url%%:*}/IPv$fam: the 64 MiB arrived intact" cmp -s "$S/dl$fam.body" "$big"
  rm -f "$S/dl$fam.body"
  check "${url%%:*}/IPv$fam: the LBs steered the router's ICMP to the real (icmp_steered $s0 -> $s1)" \
    test "$(delta "$s0" "$s1")" -gt 0 2>/dev/null
  case "$l7" in
  l7a | l7b)
    route=$(node "$l7" ip "-$fam" route get "$caddr" from "$vip" | tr -s ' \n' ' ')
    check "${url%%:*}/IPv$fam: $l7 learned the path MTU toward the client ($route)" grep -q "mtu 1280" <<<"$route"
    ;;
  *) bad "${url%%:*}/IPv$fam: no X-Served-By in the reply" ;;
  esac
}
download 4 "http://$VIP4/files/64M" "$CLIENT4" "$VIP4" 80
download 6 "http://[$VIP6]/files/64M" "$CLIENT6" "$VIP6" 80
# Port 443 may be encapsulated otherwise (popbox: GUE for [VIP6]:443).
download 4 "https://$VIP4/files/64M" "$CLIENT4" "$VIP4" 443
download 6 "https://[$VIP6]/files/64M" "$CLIENT6" "$VIP6" 443
steered=$(gsum icmp_steered)
check "lbctl metrics agrees: portico_lbd_xdp_icmp_packets_total{action=\"steered\"} = $steered" \
  test "$(msum 'portico_lbd_xdp_icmp_packets_total{action="steered"}')" = "$steered"
for h in l7a l7b; do
  echo "# $h decapsulated: $(ctl "$h" --json stats | json '", ".join("%s %d" % (k, v["packets"]) for k, v in sorted(d["global"].items()) if k.startswith("decap_"))' 2>/dev/null)"
done
echo "# after the downloads: drop_frag_needed $(gsum drop_frag_needed), drop_icmp $(gsum drop_icmp), fib_fallback $(gsum fib_fallback), router frag-needed sent: IPv4 $(fragfails), IPv6 $(fragfails6)"

# 2. The router's MAC toward the LBs changes; the LBs follow.
declare -A gw4 gw6 rif newmac pid0
for lb in lb1 lb2; do
  gw4[$lb]=$(node "$lb" ip -j route get 10.0.3.2 | json 'd[0].get("gateway", "")')
  gw6[$lb]=$(node "$lb" ip -j -6 route get fd00:3::2 | json 'd[0].get("gateway", "")')
  # The router's interface that owns that next hop.
  rif[$lb]=$(node router ip -j addr show | json "[i['ifname'] for i in d for a in i.get('addr_info', []) if a['local'] == '${gw4[$lb]}'][0]")
  old=$(mac_of router "${rif[$lb]}")
  check "$lb: the reals' next hop is ${gw4[$lb]} / ${gw6[$lb]}, router ${rif[$lb]} ($old): in the kernel's neighbour table and in lbd's cache ($(nh_cache "$lb" | awk '{print $2}' | sort -u | paste -sd,))" \
    nexthop_is "$lb" "$old"
  # What a router does when its MAC changes, if told to: gratuitous ARP
  # and unsolicited neighbour advertisements (Linux: arp_notify, ndisc_notify).
  node router sysctl -qw "net.ipv4.conf.${rif[$lb]}.arp_notify=1" "net.ipv6.conf.${rif[$lb]}.ndisc_notify=1"
  pid0[$lb]=$(cat "$S/pid/$lb.lbd")
done
newmac[lb1]=02:00:5e:00:53:01
newmac[lb2]=02:00:5e:00:53:02

loop_start
fib0=$(gsum fib_fallback)
sleep 1
t_change=$(ms)
for lb in lb1 lb2; do node router ip link set dev "${rif[$lb]}" address "${newmac[$lb]}"; done
relearned() {
  local lb
  for lb in lb1 lb2; do
    [ "$(neigh_mac "$lb" "${gw4[$lb]}")" = "${newmac[$lb]}" ] &&
      [ "$(neigh_mac "$lb" "${gw6[$lb]}")" = "${newmac[$lb]}" ] || return 1
  done
}
cache_followed() { cache_is lb1 "${newmac[lb1]}" && cache_is lb2 "${newmac[lb2]}"; }
wait_until 3 relearned
r=$?
check "the LBs relearned the router's new MACs (IPv4 and IPv6 next hops) within 3 s ($(($(ms) - t_change)) ms)" \
  test "$r" = 0
wait_until 3 cache_followed
r=$?
check "lbd's next-hop cache (reals_map) holds the new MACs within 3 s ($(($(ms) - t_change)) ms; lb1 $(nh_cache lb1 | awk '{print $2}' | sort -u | paste -sd,), lb2 $(nh_cache lb2 | awk '{print $2}' | sort -u | paste -sd,))" \
  test "$r" = 0
fib1=$(gsum fib_fallback)
tx1=$(gsum tx)
sleep 4
fib2=$(gsum fib_fallback)
tx2=$(gsum tx)
res=$(loop_stop)
loop_pid= # stopped (in that subshell)
check "requests through both VIPs before, during and after the change: $res" \
  test "$(json 'd["failed"]' < "$S/loop.json")" = 0 -a "$(json 'd["requests"]' < "$S/loop.json")" -ge 50
check "then the cached next hops carried the traffic: fib_fallback +$(delta "$fib1" "$fib2") while tx +$(delta "$tx1" "$tx2") in 4 s (+$(delta "$fib0" "$fib1") around the change)" \
  test "$(delta "$fib1" "$fib2")" = 0 -a "$(delta "$tx1" "$tx2")" -gt 0 2>/dev/null
for lb in lb1 lb2; do
  check "$lb: the same lbd throughout (pid ${pid0[$lb]}: $(cat "$S/pid/$lb.lbd" 2>/dev/null))" \
    bash -c '[ "$(cat "$1")" = "$2" ] && kill -0 "$2"' _ "$S/pid/$lb.lbd" "${pid0[$lb]}"
done
check "the router still has both VIPs over both LBs (nothing was withdrawn)" both_lbs

# 3. Control: the router's ICMP errors to the VIPs are lost (routed into a
#    blackhole on the router); the L7 hosts forget what they learned.
for h in l7a l7b; do node "$h" ip -4 route flush cache; node "$h" ip -6 route flush cache; done
node router ip -4 rule add pref 100 to "$VIP4" ipproto icmp table 100
node router ip -4 route add blackhole "$VIP4" table 100
node router ip -6 rule add pref 100 to "$VIP6" ipproto ipv6-icmp table 100
node router ip -6 route add blackhole "$VIP6" table 100
s0=$(gsum icmp_steered)
f4=$(fragfails)
f6=$(fragfails6)
cc -m 8 -o /dev/null -w '%{size_download}' "http://$VIP4/files/64M" > "$S/ctl4" &
c4=$!
cc -m 8 -o /dev/null -w '%{size_download}' "http://[$VIP6]/files/64M" > "$S/ctl6" &
c6=$!
wait "$c4"
r4=$?
wait "$c6"
r6=$?
s1=$(gsum icmp_steered)
check "control: without the ICMP, 64 MiB over IPv4 stalls (curl exit $r4 after 8 s, $(cat "$S/ctl4") bytes; the router could not forward $(($(fragfails) - f4)) packets)" \
  test "$r4" = 28 -a "$(cat "$S/ctl4")" -lt "$size64" -a "$(($(fragfails) - f4))" -gt 0
check "control: and over IPv6 (curl exit $r6, $(cat "$S/ctl6") bytes; the router could not forward $(($(fragfails6) - f6)) packets)" \
  test "$r6" = 28 -a "$(cat "$S/ctl6")" -lt "$size64" -a "$(($(fragfails6) - f6))" -gt 0
check "control: nothing was steered meanwhile (icmp_steered $s0 -> $s1)" test "$(delta "$s0" "$s1")" = 0
node router ip -4 rule del pref 100
node router ip -6 rule del pref 100

check "no AddressSanitizer/UBSan report in daemon logs" \
  bash -c '! grep -lE "ERROR: AddressSanitizer|runtime error:" "$1"/log/*.log' _ "$S"

echo "# $(($(ms) - t_start)) ms"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
