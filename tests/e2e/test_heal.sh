#!/usr/bin/env bash
# End-to-end: a PoP that heals itself. A whole PoP (deploy/popbox, own
# prefix and state) with BIRD 2 as the router, lbd's health checks and BGP
# speaker, and real clients; processes are stopped, drained, restarted and
# removed while fresh requests and large downloads run.
#
#   tests/e2e/test_heal.sh [BUILD_DIR]
#
# Exits 77 (skipped) without root. Cleans up on any exit. Timings printed
# here are for the reader; the figures that matter are measured by
# tests/bench/bench_heal.sh and kept in docs/benchmarks.md.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
export POPBOX_BUILD=${1:-${POPBOX_BUILD:-$REPO/build}}
export POPBOX_PREFIX=heal$$
export POPBOX_STATE=$(mktemp -d /tmp/portico-heal.XXXXXX)
export POPBOX_MAX_FILE_MB=64
export POPBOX_NO_BUILD=1
export POPBOX_DRAIN_DELAY_MS=2000
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
POPBOX=$REPO/deploy/popbox
VIP4=192.0.2.10
VIP6=2001:db8::10
export S=$POPBOX_STATE

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: network namespaces, XDP and BGP on port 179 need root"
  exit 77
fi

# shellcheck source=tests/e2e/tap.sh
. "$REPO/tests/e2e/tap.sh"

# shellcheck source=tests/e2e/popbox_lib.sh
. "$REPO/tests/e2e/popbox_lib.sh"

t0=$(ms)
if ! "$POPBOX" up --quiet --no-traffic; then
  echo "not ok - popbox up"
  for f in "$S"/log/*.log; do echo "== $f"; tail -5 "$f"; done
  echo "0 passed, 1 failed"
  exit 1
fi
ok "popbox up with BIRD as the router ($POPBOX_PREFIX-*, $(($(ms) - t0)) ms)"

# 1. Sessions and routes.
est() { # ms from lbd's start to Established, from its log
  awk '/bgp: AS/ {split($1,a,/[T:Z]/); s=a[2]*3600000+a[3]*60000+a[4]*1000}
       /established \(/ {split($1,a,/[T:Z]/); print int(a[2]*3600000+a[3]*60000+a[4]*1000-s); exit}' "$S/log/$1.lbd.log"
}
for lb in lb1 lb2; do
  e=$(est "$lb")
  check "$lb: BGP session Established ${e} ms after lbd started (within 1 s)" test -n "$e" -a "${e:-9999}" -lt 1000
done
check "BIRD has both sessions Established" \
  bash -c '[ "$(grep -cE "^lb[12] +BGP .* Established" <<<"$1")" = 2 ]' _ "$(birdc show protocols)"
check "BIRD: $VIP4/32 from both LBs" test "$(bird_paths "$VIP4/32")" = 2
check "BIRD: $VIP6/128 from both LBs" test "$(bird_paths "$VIP6/128")" = 2
check "router's kernel: ECMP over both LBs, IPv4 ($(nexthops4)) and IPv6 ($(nexthops6))" both_lbs
out=$(ctl lb1 bgp neighbors)
check "lbctl bgp neighbors shows the router Established with 2 prefixes" \
  bash -c 'grep -qE "^10\.0\.1\.1 +65000 Established .* 2 ipv4,ipv6" <<<"$1"' _ "$out"
out=$(ctl lb1 bgp routes)
check "lbctl bgp routes shows both VIPs announced with this LB as next hop" \
  bash -c 'grep -qE "^192\.0\.2\.10/32 +10\.0\.1\.2 .*announced" <<<"$1" && grep -qE "^2001:db8::10/128 +fd00:1::2 .*announced" <<<"$1"' _ "$out"
out=$(ctl lb1 real list)
check "lbctl real list: every real up, with its last result and latency" \
  bash -c '[ "$(grep -cE " up +in .*ms  (HTTP 200|SERVING|connected)" <<<"$1")" = 8 ]' _ "$out"

# 2. A proxy dies: its host leaves the rings on both LBs; new requests go
#    to the other host; it comes back when the proxy does.
loop_start
daemon stop l7a l7proxy
t=$(ms)
wait_until 10 all_down 3
dt=$(($(ms) - t))
check "l7a's proxy stopped: l7a down on both LBs after $dt ms (bound: fall x interval + timeout = 2000 ms)" \
  test "$dt" -le 2100
sleep 0.3
out=$(loop_stop)
echo "# while l7a's proxy was dying: $out"
fresh=$(for i in $(seq 24); do
  u=$([ $((i % 2)) = 0 ] && echo "https://$VIP4/" || echo "https://[$VIP6]/")
  cc -o /dev/null -D - "$u" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}'
done | sort | uniq -c | awk '{print $1, $2}' | paste -sd' ')
check "then every new request succeeds, all on l7b ($fresh)" test "$fresh" = "24 popbox/l7b"
check "lbctl real list says why (connection refused)" \
  bash -c 'grep -qE "^192\.0\.2\.10:443/tcp +10\.0\.3\.2 .* down +out .*Connection refused" <<<"$1"' _ "$(ctl lb1 real list)"
daemon start l7a l7proxy
t=$(ms)
wait_until 10 all_up 3
check "l7a's proxy back: up on both LBs after $(($(ms) - t)) ms" all_up 3
served=$(for i in $(seq 30); do cc -o /dev/null -D - "https://$VIP4/" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}'; done | sort -u | paste -sd' ')
check "and serves new requests again ($served)" test "$served" = "popbox/l7a popbox/l7b"

# 3. Every proxy stops: no healthy real, the VIPs are withdrawn; back when
#    they are.
daemon stop l7a l7proxy
daemon stop l7b l7proxy
t=$(ms)
check "no proxy left: both VIPs withdrawn from the router" wait_until 10 withdrawn
echo "# withdrawn $(($(ms) - t)) ms after the last proxy stopped"
check "and from BIRD's table" test "$(bird_paths "$VIP4/32")" = 0 -a "$(bird_paths "$VIP6/128")" = 0
check "lbctl bgp routes says why" \
  bash -c 'grep -q "withdrawn: not enough healthy reals" <<<"$1"' _ "$(ctl lb2 bgp routes)"
daemon start l7a l7proxy
daemon start l7b l7proxy
t=$(ms)
check "proxies back: announced again by both LBs" wait_until 10 both_lbs
echo "# announced $(($(ms) - t)) ms after the proxies started"
wait_until 10 all_up 3
wait_until 10 all_up 4

# 4. Drain lb1: GRACEFUL_SHUTDOWN first (BIRD prefers lb2), then the
#    withdrawal; fresh requests keep succeeding through lb2.
loop_start
ctl lb1 bgp drain >/dev/null
check "drain: BIRD sees GRACEFUL_SHUTDOWN (65535,0) on lb1's routes" \
  wait_until 2 bash -c "$(declare -f node birdc bird_gshut); bird_gshut $VIP4/32 lb1 && bird_gshut $VIP6/128 lb1"
check "and the router sends everything to lb2 ($(nexthops4); $(nexthops6))" wait_until 2 only_lb2
check "lbctl bgp routes says draining" bash -c 'grep -q "draining (withdraw in" <<<"$1"' _ "$(ctl lb1 bgp routes)"
check "after the drain delay, BIRD has the withdrawal" \
  wait_until 5 bash -c "$(declare -f node birdc bird_has); ! bird_has $VIP4/32 lb1 && ! bird_has $VIP6/128 lb1"
sleep 0.5
out=$(loop_stop)
check "fresh requests during the drain all succeeded ($out)" test "$(loop_failed)" = 0
ctl lb1 bgp undrain >/dev/null
check "undrain: ECMP over both LBs again" wait_until 5 both_lbs

# 5. Restart lbd on lb1 during a large download through lb1 (lb2 drained
#    so that the flow must use lb1): the pinned dataplane keeps forwarding,
#    BIRD keeps lb1's routes (graceful restart), the download completes.
ctl lb2 bgp drain >/dev/null
wait_until 5 bash -c "$(declare -f node birdc bird_has); ! bird_has $VIP4/32 lb2"
wait_until 3 only_lb1
loop_start
tx=$(tx_of lb1)
download_start "https://$VIP4/files/64M"
sleep 0.5
daemon restart lb1 lbd
kept=$(bird_paths "$VIP4/32")
wait_until 10 test -S "$S/run/lb1.sock"
check "lbd on lb1 restarted and adopted its dataplane" \
  grep -q "adopted the dataplane pinned in" "$S/log/lb1.lbd.log"
check "BIRD kept lb1's route through the restart ($kept path)" test "$kept" = 1
check "the download through lb1 completed intact" download_ok
# (DSR: the LB forwards only the client's side, mostly ACKs.)
check "and it went through lb1 ($(($(tx_of lb1) - tx)) packets sent by lb1's XDP)" \
  test "$(($(tx_of lb1) - tx))" -gt 1000
check "lb1's session is Established again" \
  wait_until 5 bash -c '[ "$(LBCTL_SOCKET=$1/run/lb1.sock "$2"/ctl/lbctl --json bgp neighbors | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])")" = Established ]' _ "$S" "$POPBOX_BUILD"
out=$(loop_stop)
check "fresh requests during the restart all succeeded ($out)" test "$(loop_failed)" = 0

# 5b. The same through a crash: SIGKILL sends no NOTIFICATION, so BIRD
#     keeps lb1's route as stale (graceful restart), the XDP program and
#     its pinned maps stay, and the next lbd adopts them.
loop_start
tx=$(tx_of lb1)
download_start "https://$VIP4/files/64M"
sleep 0.5
kill -KILL "$(cat "$S/pid/lb1.lbd")"
sleep 0.5
kept=$(bird_paths "$VIP4/32")
daemon start lb1 lbd
check "lbd on lb1 killed (SIGKILL): BIRD kept its route meanwhile ($kept path)" test "$kept" = 1
check "the next lbd adopted the dataplane again" \
  wait_until 10 bash -c '[ "$(grep -c "adopted the dataplane pinned in" "$1/log/lb1.lbd.log")" -ge 2 ]' _ "$S"
check "the download through lb1 completed intact across the crash" download_ok
check "and it went through lb1 ($(($(tx_of lb1) - tx)) packets sent by lb1's XDP)" \
  test "$(($(tx_of lb1) - tx))" -gt 1000
check "lb1's session is Established again after the crash" \
  wait_until 5 bash -c '[ "$(LBCTL_SOCKET=$1/run/lb1.sock "$2"/ctl/lbctl --json bgp neighbors | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])")" = Established ]' _ "$S" "$POPBOX_BUILD"
out=$(loop_stop)
check "fresh requests during the crash and restart all succeeded ($out)" test "$(loop_failed)" = 0
ctl lb2 bgp undrain >/dev/null
wait_until 5 both_lbs

# 6. Remove lb1 (lbctl shutdown: Cease, then the XDP program goes) during
#    a download that went through lb1: ECMP moves the flow to lb2, whose
#    identical ring picks the same L7 host; the download completes.
ctl lb2 bgp drain >/dev/null
wait_until 5 bash -c "$(declare -f node birdc bird_has); ! bird_has $VIP4/32 lb2"
wait_until 3 only_lb1
tx1=$(tx_of lb1)
download_start "https://$VIP4/files/64M"
sleep 0.5
n1=$(($(tx_of lb1) - tx1))
check "a download started through lb1 ($n1 packets sent by lb1's XDP so far)" test "$n1" -gt 100
ctl lb2 bgp undrain >/dev/null
wait_until 5 both_lbs
loop_start
tx2=$(tx_of lb2)
ctl lb1 shutdown >/dev/null
check "lb1 removed: its routes are gone from the router" wait_until 5 only_lb2
check "and its XDP program is detached" \
  wait_until 5 bash -c '! ip netns exec "$1" ip link show eth0 | grep -q xdp' _ "$POPBOX_PREFIX-lb1"
check "the download that started on lb1 completed intact" download_ok
n2=$(($(tx_of lb2) - tx2))
check "finishing through lb2 ($n2 packets sent by lb2's XDP after lb1 went)" test "$n2" -gt 100
out=$(loop_stop)
echo "# fresh requests while lb1 went away: $out"
check "no request failed while lb1 went away ($out)" test "$(loop_failed)" = 0
daemon start lb1 lbd
check "lb1 back (a fresh dataplane): announced again" wait_until 10 both_lbs

# 7. Drain an L7 host (weight 0 on both LBs): it finishes its transfers
#    and gets no new flows.
download_start "https://$VIP4/files/64M"
host=$(tr -d '\r' < "$S/dl.headers" | awk -F': ' 'tolower($1)=="x-served-by"{print $2}')
addr=$([ "$host" = popbox/l7a ] && echo 10.0.3.2 || echo 10.0.4.2)
other=$([ "$host" = popbox/l7a ] && echo popbox/l7b || echo popbox/l7a)
for lb in lb1 lb2; do ctl "$lb" real set-weight "$VIP4:443" "$addr" 0 >/dev/null; done
served=$(for i in $(seq 30); do cc -o /dev/null -D - "https://$VIP4/" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}'; done | sort | uniq -c | awk '{print $1, $2}' | paste -sd' ')
check "$host drained (weight 0): 30 new requests all went to $other ($served)" test "$served" = "30 $other"
check "the transfer already on $host completed intact" download_ok
for lb in lb1 lb2; do ctl "$lb" real set-weight "$VIP4:443" "$addr" 1 >/dev/null; done

# 8. A neighbour that sends garbage gets the NOTIFICATION RFC 4271 names;
#    it is counted and logged; the router's session does not notice.
node router ip addr add 10.0.1.3/24 dev r-lb1
cp "$S/conf/lb1-lbd.conf" "$S/conf/lb1-lbd.conf.orig"
sed -i 's|hold_time = 9; description = "router"; }|&,\n    { address = "10.0.1.3"; port = 1790; asn = 65099; hold_time = 9; description = "rogue"; }|' \
  "$S/conf/lb1-lbd.conf"
est0=$(ctl lb1 --json bgp neighbors | json 'd[0]["established_count"]')
for g in marker:1/2 length:1/2 type:1/3 open:5/3; do
  kind=${g%%:*}
  want=${g#*:}
  [ "$kind" = marker ] && want=1/1
  node router timeout 30 /usr/bin/python3 "$REPO/tests/e2e/bgp_peer.py" --listen 10.0.1.3 --port 1790 \
    --garbage "$kind" > "$S/peer.json" &
  ppid=$!
  sleep 0.3
  [ "$kind" = marker ] && ctl lb1 reload >/dev/null
  wait "$ppid"
  got=$(json '"%s/%s%s" % (d.get("code"), d.get("subcode"), "" if d.get("closed") else " (not closed)")' < "$S/peer.json")
  check "garbage ($kind) from a neighbour: NOTIFICATION $want and the connection closed (got $got)" \
    test "$got" = "$want"
done
node router timeout 30 /usr/bin/python3 "$REPO/tests/e2e/bgp_peer.py" --listen 10.0.1.3 --port 1790 \
  --garbage aspath > "$S/peer.json" &
ppid=$!
wait "$ppid"
check "a malformed AS_PATH is treated as withdraw (RFC 7606), the session stays ($(cat "$S/peer.json"))" \
  grep -q '"kept": true' "$S/peer.json"
nb=$(ctl lb1 --json bgp neighbors)
# Three bad headers and the bad AS_PATH (a second OPEN is well-formed,
# only unexpected).
check "lbd counted the rogue's malformed messages ($(json 'd[1]["malformed_received"]' <<<"$nb"))" \
  test "$(json 'd[1]["malformed_received"]' <<<"$nb")" -ge 4
check "and logged the NOTIFICATIONs it sent" \
  grep -q "neighbor 10.0.1.3 (AS 65099): sent NOTIFICATION Message Header Error" "$S/log/lb1.lbd.log"
check "the router's session never went down (established $(json 'd[0]["established_count"]' <<<"$nb") time(s), was $est0)" \
  test "$(json 'd[0]["state"] + str(d[0]["established_count"])' <<<"$nb")" = "Established$est0"
cp "$S/conf/lb1-lbd.conf.orig" "$S/conf/lb1-lbd.conf"
ctl lb1 reload >/dev/null
check "reload without the rogue: one neighbour left" \
  test "$(ctl lb1 --json bgp neighbors | json 'len(d)')" = 1

# 9. Bad BGP or health config: refused with file:line, nothing changes.
for bad in 's/asn = 65001;/asn = 0;/' 's/kind = "tcp";/kind = "icmp";/' \
  's/hold_time = 9; description = "router";/hold_time = 9; description = "router"; local_address = "fd00:1::2";/' \
  's/timeout_ms = 1000; };/timeout_ms = 1000; rise = 0; };/' \
  's/timeout_ms = 1000; };/timeout_ms = 1000; }; min_healthy = 3;/'; do
  sed "$bad" "$S/conf/lb1-lbd.conf.orig" > "$S/conf/lb1-lbd.conf"
  err=$(ctl lb1 reload 2>&1)
  check "bad config refused ($err)" \
    bash -c '[[ "$1" == *"lb1-lbd.conf:"[0-9]*": "* && "$1" == *"running config unchanged"* ]]' _ "$err"
done
cp "$S/conf/lb1-lbd.conf.orig" "$S/conf/lb1-lbd.conf"
st=$(ctl lb1 --json bgp neighbors | json 'd[0]["state"] + " " + str(d[0]["established_count"])')
check "and the router's session never moved ($st)" test "$st" = "Established $est0"
check "both LBs still announce both VIPs" both_lbs

# 10. No sanitizer report in any daemon's log.
check "no AddressSanitizer/UBSan report in daemon logs" \
  bash -c '! grep -lE "ERROR: AddressSanitizer|runtime error:" "$1"/log/*.log' _ "$S"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
