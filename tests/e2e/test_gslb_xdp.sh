#!/usr/bin/env bash
# gslbd's AF_XDP path end to end: a map built by gslb-gen and gslb-map,
# gslbd with xdp = { interface; queues = 1 } on a veth, kdig and hand-made
# frames from a second namespace on the other end. Checked:
#  - at start libknot's XDP program is attached to the interface and
#    /v1/status names it;
#  - UDP queries over IPv4 and IPv6, with and without ECS, for 100 random
#    subnets drawn from the samples, are answered with the first PoP and
#    the scope gslb-map's own lookup gives, and counted as xdp queries,
#    none as udp; a client in a mapped subnet that the server has no route
#    back to is answered too (only XDP, which swaps the addresses, can);
#  - TCP queries still go through the kernel and its socket; ICMP echo
#    and UDP to another port pass the program to the kernel; a query too
#    big for the MTU (fragments) is answered;
#  - hundreds of bad frames (UDP lengths under 8 and over the packet, IPv4
#    total and header lengths and IPv6 payload lengths that lie, cut
#    frames, truncated DNS headers, random and mutated payloads, DNS
#    responses, source port 0, fragments, VLAN tags, martian sources)
#    crash nothing; responses and source port 0 are never answered, and
#    good queries are answered after;
#  - more than 4,096 unanswered datagrams (responses) leak no TX frame:
#    50 queries after them are all answered;
#  - a second gslbd on the same interface does not start, and the running
#    one keeps its program and its XDP answers;
#  - the rate limit applies on the XDP path (a second gslbd with one);
#  - SIGTERM: gslbd exits 0 and takes the program off; after a SIGKILL
#    left it attached, the next start replaces it and answers;
#  - config errors: more queues than workers, listen ports that differ
#    (file:line), an interface that does not exist or with fewer RX queues
#    than asked for (start fails, names it, leaves no program behind).
#
#   tests/e2e/test_gslb_xdp.sh [BUILD_DIR]     (default: build-asan)
#
# Two private network namespaces joined by a veth pair: gslbd's (gx0,
# 10.201.0.1/24, fd20:1::1/64, the XDP interface) and the client's (gx1,
# .2 and ::2, tx checksum offload off: partial checksums and a native-XDP
# peer do not mix). Both removed on any exit. Exits 77 without root.
# About 30 s.
# shellcheck disable=SC2016 # bash -c '...' _ ARGS: expanded by that bash
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
NAME=gslbx TAG=gslb-xdp
IF=gx0  # gslbd's end, the XDP interface
CIF=gx1 # the client's end
S4=10.201.0.1
S6=fd20:1::1
C4=10.201.0.2
C6=fd20:1::2
# shellcheck source=tests/e2e/gslb_xdp_lib.sh
. "$E2E/gslb_xdp_lib.sh"
XDP="xdp = { interface = \"$IF\"; queues = 1; };"
Q_XDP='gslbd_queries_total{transport="xdp"}'
X_BAD='gslbd_xdp_dropped_total{reason="malformed"}'
X_FULL='gslbd_xdp_dropped_total{reason="tx_full"}'

# ---- samples and map ----
t0=$(date +%s.%N)
"$GGEN" --seed 7 --samples 20000 --pops "$D/pops.csv" --out "$D/samples.csv" \
  --asn-out "$D/asn.txt" 2>"$D/gen.log"
mkdir -p "$D/live"
"$GMAP" build --samples "$D/samples.csv" --asn "$D/asn.txt" --seed 7 \
  --publish "$D/live/map.bin" > "$D/map.log" 2>&1
check "gslb-gen and gslb-map made the map" test -s "$D/live/map.bin"
echo "# samples and map in $(echo "$(date +%s.%N) - $t0" | bc) s"

# ---- 1. start: the program on the interface, the status ----
write_conf "$D/gslbd.conf" "$XDP"
start_gslbd "$D/gslbd.log" || give_up "gslbd did not start" "$D/gslbd.log"
ok "gslbd started with xdp on $IF"
echo "# $(ip -n "$NS" link show "$IF" | grep -o 'prog/xdp.*')"
check "an XDP program is attached to $IF" xdp_attached
st=$("$LBCTL" --json gslb status 2>&1)
xif=$($PY -c 'import json, sys; x = json.load(sys.stdin).get("xdp") or {}
print(x.get("interface"), x.get("queues"), x.get("port"), x.get("program"))' <<<"$st" 2>&1)
echo "# status xdp: $xif"
pid_now=$(ip -n "$NS" link show "$IF" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')
check "/v1/status: xdp.interface $IF, 1 queue, port 53, the attached program" \
  test "$xif" = "$IF 1 53 $pid_now"

# ---- 2. UDP answers against the map, through XDP ----
draw_subnets 100
n4=$(grep -c -v ':' "$D/subnets")
echo "# 100 subnets: $n4 IPv4 /24, $((100 - n4)) IPv6 /56"
x0=$(metric "$Q_XDP"); u0=$(metric "$Q_UDP")
# One kdig per server address and type, 100 queries each: subnet,
# type, answer, scope per line.
: > "$D/got"
sent=0
for srv in "$S4" "$S6"; do
  for t in A AAAA; do
    args=()
    while read -r s; do args+=(www.example.test "$t" "+subnet=$s"); done < "$D/subnets"
    kd "@$srv" +noall +answer +opt "${args[@]}" | $PY "$E2E/gslb_answers.py" parse >> "$D/got"
    sent=$((sent + 100))
  done
done
check "$sent UDP answers with an ECS scope (IPv4 and IPv6 transport, A and AAAA)" \
  test "$(wc -l < "$D/got")" = "$sent"
mism=$(compare_answers "$D/expected" "$D/got")
read -r nbad nhits <<<"$mism"
check "answers match the map for all $nhits mapped queries of $sent (mismatches: ${nbad:-?})" \
  test "${nbad:-1}" = 0 -a "${nhits:-0}" -gt 200
# No ECS: the client's own address decides. Give the client an address
# in a mapped subnet; the server has no route back to it, so only XDP
# (which answers by swapping the addresses) can reply.
line=$(grep 'pops=[a-z]' "$D/expected" | grep -v ':' | head -1)
src=$(awk '{print $1}' <<<"$line" | sed 's|\.0/24$|.77|')
want=${V4[$(first_pop "$line")]}
ncx ip addr add "$src/32" dev "$CIF"
out=$(kd "@$S4" -b "$src" www.example.test A +short)
sent=$((sent + 1))
check "no ECS, IPv4: the client's address decides ($src -> ${out:-nothing}, want $want)" \
  test "$out" = "$want"
line6=$(grep 'pops=[a-z]' "$D/expected" | grep ':' | head -1)
if [ -n "$line6" ]; then
  pfx=$(awk '{print $1}' <<<"$line6" | sed 's|::/56$||; s|/56$||')
  src6="${pfx}::77"
  ncx ip -6 addr add "$src6/128" dev "$CIF" nodad
  want6=${V6[$(first_pop "$line6")]}
  out=$(kd "@$S6" -b "$src6" www.example.test AAAA +short)
  sent=$((sent + 1))
  check "no ECS, IPv6: the client's address decides ($src6 -> ${out:-nothing}, want $want6)" \
    test "$out" = "$want6"
else
  bad "no mapped IPv6 subnet among the 100"
fi
out=$(kd "@$S4" example.test SOA +short)
check "SOA over UDP/IPv4 from the client's own address" grep -q "^ns1.example.test. hostmaster" <<<"$out"
out=$(kd "@$S6" nope.example.test A)
check "NXDOMAIN over UDP/IPv6" grep -q "status: NXDOMAIN" <<<"$out"
sent=$((sent + 2))
x1=$(metric "$Q_XDP"); u1=$(metric "$Q_UDP")
check "xdp queries rose by $((x1 - x0)) (>= $sent sent), udp by $((u1 - u0)) (0)" \
  test $((x1 - x0)) -ge "$sent" -a "$u1" = "$u0"

# ---- 3. TCP goes to the kernel ----
t0=$(metric "$Q_TCP"); x0=$(metric "$Q_XDP")
out4=$(kd "@$S4" +tcp www.example.test A "+subnet=$(awk '{print $1}' <<<"$line")" +short)
out6=$(kd "@$S6" +tcp www.example.test AAAA +short)
check "TCP over IPv4 and IPv6 answered (${out4:-nothing}, ${out6:-nothing})" \
  test "$out4" = "$want" -a -n "$out6"
t1=$(metric "$Q_TCP"); x1=$(metric "$Q_XDP")
check "...through the kernel's sockets: tcp queries +$((t1 - t0)) (2), xdp +$((x1 - x0)) (0)" \
  test $((t1 - t0)) = 2 -a "$x1" = "$x0"

# ---- 4. other traffic passes ----
check "ICMP echo to $S4 passes" ncx $PY "$FR" ping "$S4"
check "ICMPv6 echo to $S6 passes" ncx $PY "$FR" ping "$S6"
nsx $PY "$FR" udp-echo "$S4" 5300 8 > "$D/echo4" &
nsx $PY "$FR" udp-echo "$S6" 5300 8 > "$D/echo6" &
for _ in $(seq 50); do grep -q ready "$D/echo4" && grep -q ready "$D/echo6" && break; sleep 0.1; done
check "UDP to another port (5300) reaches a socket there, IPv4" ncx $PY "$FR" udp-probe "$S4" 5300
check "UDP to another port (5300) reaches a socket there, IPv6" ncx $PY "$FR" udp-probe "$S6" 5300

# A query padded past the MTU leaves the client in fragments, which
# libknot's program drops (documented: queries are far below an MTU, and
# the resolver retries). Checked as the documented limit: no answer, and
# neither path counts it.
x0=$(metric "$Q_XDP"); u0=$(metric "$Q_UDP")
out4=$(kd "@$S4" www.example.test A +padding=1700 +short 2>/dev/null)
out6=$(kd "@$S6" www.example.test A +padding=1700 +short 2>/dev/null)
x1=$(metric "$Q_XDP"); u1=$(metric "$Q_UDP")
echo "# fragmented queries: xdp +$((x1 - x0)), udp +$((u1 - u0))"
check "fragmented UDP queries (1,700 bytes) dropped as documented, IPv4 (${out4:-nothing}) and IPv6 (${out6:-nothing})" \
  test -z "$out4" -a -z "$out6" -a "$x1" = "$x0" -a "$u1" = "$u0"

# ---- 5. bad frames ----
b0=$(metric "$X_BAD"); x0=$(metric "$Q_XDP")
ncx $PY "$FR" bad "$CIF" "$SMAC" "$C4" "$S4" "$C6" "$S6" 53 > "$D/bad.out" 2>&1
sed 's/^/# /' "$D/bad.out"
b1=$(metric "$X_BAD"); x1=$(metric "$Q_XDP")
nbad=$(awk '/^total sent/ { print $3 }' "$D/bad.out")
check "sent ${nbad:-no} bad frames" test "${nbad:-0}" -gt 500
check "...the two well-made frames among them were answered" bash -c \
  'grep -q "^valid-v4 sent 1 answered 1" "$1" && grep -q "^valid-v6 sent 1 answered 1" "$1"' _ "$D/bad.out"
check "...DNS responses and source port 0 never answered" bash -c \
  'grep -q "^responses sent 100 answered 0" "$1" && grep -q "^sport-0 sent 10 answered 0" "$1"' _ "$D/bad.out"
check "...nor what the kernel would drop: martian sources, another destination address, group MACs" bash -c \
  'grep -Eq "^martian-src sent [1-9][0-9]* answered 0" "$1" && grep -q "^other-dst-ip sent 1 answered 0" "$1" &&
   grep -q "^group-mac sent 6 answered 0" "$1"' _ "$D/bad.out"
echo "# xdp queries +$((x1 - x0)), malformed +$((b1 - b0)) (the program drops some lies itself)"
check "gslbd still running" kill -0 "$GPID"
out=$(kd "@$S4" www.example.test A +short "+subnet=$(awk '{print $1}' <<<"$line")")
check "...and answering correctly ($out)" test "$out" = "$want"

# ---- 6. no TX frame leak ----
x0=$(metric "$Q_XDP"); f0=$(metric "$X_FULL")
res=$(ncx $PY "$FR" noanswer "$S4" 53 6000)
x1=$(metric "$Q_XDP")
echo "# responses: $res; xdp queries +$((x1 - x0))"
check "6000 DNS responses through XDP: none answered, >4096 taken by gslbd ($((x1 - x0)))" \
  bash -c 'grep -q "answered 0$" <<<"$1" && [ "$2" -gt 4096 ]' _ "$res" $((x1 - x0))
res=$(ncx $PY "$FR" ask "$S4" 53 50)
check "...then 50 queries all answered ($res)" test "$res" = "asked 50 answered 50"
res=$(ncx $PY "$FR" ask "$S6" 53 50)
check "...over IPv6 too ($res)" test "$res" = "asked 50 answered 50"
f1=$(metric "$X_FULL")
check "...and no TX frame ran out (tx_full +$((f1 - f0)))" test "$f1" = "$f0"

# ---- a second gslbd on the same interface ----
# It cannot have queue 0 and must not start; the running one must keep
# its program and its XDP answers.
prog0=$(ip -n "$NS" link show "$IF" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')
sed "s|$D/gslbd.sock|$D/second.sock|" "$D/gslbd.conf" > "$D/second.conf"
out=$(nsx timeout 20 "$GSLBD" -c "$D/second.conf" 2>&1); rc=$?
echo "# second gslbd: $(grep -m1 'xdp' <<<"$out")"
check "a second gslbd on $IF does not start ($rc)" test "$rc" != 0 -a "$rc" != 124
prog1=$(ip -n "$NS" link show "$IF" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')
x0=$(metric "$Q_XDP")
out=$(kd "@$S4" www.example.test A +short)
x1=$(metric "$Q_XDP")
check "...the running one still answers (${out:-nothing})" test -n "$out"
check "...still through XDP: program ${prog1:-none} (was $prog0), xdp +$((x1 - x0))" \
  test "$prog1" = "$prog0" -a $((x1 - x0)) -ge 1

# ---- 8. SIGTERM: exit 0, program gone ----
stop_gslbd TERM
check "SIGTERM: gslbd exited $RC (0)" test "$RC" = 0
if xdp_attached; then
  bad "...XDP program still attached to $IF after SIGTERM"
else
  ok "...and took its XDP program off $IF"
fi

# ---- 7. rate limit on the XDP path ----
write_conf "$D/gslbd.conf" "$XDP" "rate_limit = { rate = 50; burst = 50; slip = 2; };"
start_gslbd "$D/gslbd2.log" || give_up "second gslbd did not start" "$D/gslbd2.log"
ok "second gslbd (rate_limit 50/s) started"
x0=$(metric "$Q_XDP")
res=$(ncx $PY "$E2E/dns_attack.py" flood "$S4" 53 2000)
x1=$(metric "$Q_XDP")
rd=$(metric 'gslbd_rate_limited_total{action="dropped"}')
rs=$(metric 'gslbd_rate_limited_total{action="slipped"}')
full=$(awk '{print $4 - $6}' <<<"$res")
echo "# flood: $res; xdp +$((x1 - x0)), rate-limited: dropped $rd slipped $rs"
check "a flood of 2000 through XDP ($((x1 - x0)) taken) is rate limited: $full answered in full" \
  test "$((x1 - x0))" -ge 1000 -a "${full:-2000}" -lt 500
check "...rate-limit counters moved (dropped $rd, slipped $rs)" test "$rd" -gt 0 -a "$rs" -gt 0
out=$(kd "@$S6" www.example.test AAAA +short)
check "another source still answered" test -n "$out"

# ---- a SIGKILL leaves the program; the next start replaces it ----
stop_gslbd KILL
old=$(ip -n "$NS" link show "$IF" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')
echo "# after SIGKILL: program ${old:-none} left on $IF"
write_conf "$D/gslbd.conf" "$XDP"
start_gslbd "$D/gslbd3.log" || give_up "third gslbd did not start" "$D/gslbd3.log"
new=$(ip -n "$NS" link show "$IF" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')
x0=$(metric "$Q_XDP")
out=$(kd "@$S4" www.example.test A +short)
x1=$(metric "$Q_XDP")
check "restart after SIGKILL: program ${old:-none} replaced by ${new:-none}, answered via XDP" \
  test -n "$old" -a -n "$new" -a "$old" != "$new" -a -n "$out" -a $((x1 - x0)) -ge 1
stop_gslbd TERM
if [ "$RC" = 0 ] && ! xdp_attached; then
  ok "SIGTERM again: exit 0, program off"
else
  bad "SIGTERM again: exit $RC, attached: $(ip -n "$NS" link show "$IF" | grep -o 'prog/xdp.*')"
fi

# ---- 9. config errors ----
write_conf "$D/q.conf" "xdp = { interface = \"$IF\"; queues = 3; };"
out=$(nsx "$GSLBD" --check -c "$D/q.conf" 2>&1); rc=$?
check "--check: queues 3 > workers 2 refused, file:line ($out)" \
  bash -c '[ "$1" != 0 ] && grep -q "q.conf:[0-9]*:.*queues" <<<"$2"' _ "$rc" "$out"
write_conf "$D/p.conf" "$XDP" "" "\"$S4:53\", \"[$S6]:5353\""
out=$(nsx "$GSLBD" --check -c "$D/p.conf" 2>&1); rc=$?
check "--check: listen ports 53 and 5353 with xdp refused, file:line ($out)" \
  bash -c '[ "$1" != 0 ] && grep -q "p.conf:[0-9]*:.*port" <<<"$2"' _ "$rc" "$out"
write_conf "$D/ok.conf" "$XDP"
out=$(nsx "$GSLBD" --check -c "$D/ok.conf" 2>&1)
check "--check: the good config passes" test $? = 0
write_conf "$D/gslbd.conf" "xdp = { interface = \"nosuch0\"; queues = 1; };"
out=$(nsx timeout 20 "$GSLBD" -c "$D/gslbd.conf" 2>&1); rc=$?
echo "# $(grep -m1 nosuch0 <<<"$out")"
check "xdp on a missing interface: start fails ($rc), naming it" \
  bash -c '[ "$1" != 0 ] && [ "$1" != 124 ] && grep -q "nosuch0" <<<"$2"' _ "$rc" "$out"
write_conf "$D/gslbd.conf" "xdp = { interface = \"$IF\"; queues = 2; };"
out=$(nsx timeout 20 "$GSLBD" -c "$D/gslbd.conf" 2>&1); rc=$?
echo "# $(grep -m1 "$IF" <<<"$out")"
check "xdp queues 2 on a 1-queue veth: start fails ($rc), naming $IF" \
  bash -c '[ "$1" != 0 ] && [ "$1" != 124 ] && grep -q "$3.*queue 1" <<<"$2"' _ "$rc" "$out" "$IF"
check "...and leaves no XDP program behind" bash -c '! ip -n "$0" link show "$1" | grep -q prog/xdp' \
  "$NS" "$IF"

if cat "$D"/gslbd*.log | grep -q "ERROR: AddressSanitizer\|runtime error"; then
  bad "sanitizer reports in gslbd's logs"
  grep -h -m5 "AddressSanitizer\|runtime error" "$D"/gslbd*.log
else
  ok "no sanitizer report"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
