#!/usr/bin/env bash
# gslbd's XDP answer program end to end (xdp = { mode = "answer" }): a map
# built by gslb-gen and gslb-map, gslbd on one end of a veth, kdig and
# hand-made frames from a namespace on the other. Checked:
#  - at start gslbd's program is on the interface and /v1/status says
#    mode answer with the map loaded;
#  - 400 UDP queries (100 random subnets of the samples, IPv4 and IPv6
#    transport, A and AAAA, with ECS) match gslb-map's own lookup (PoP and
#    scope), and the program, not the sockets, answered those the map
#    decides; SOA and NXDOMAIN still come from the sockets; a client with
#    no route back (only an XDP answer reaches it) gets its answer by its
#    own address;
#  - TCP goes through the kernel;
#  - a drain moves a subnet to its next PoP at once, in the program; a
#    new map file is followed (answers match the new map);
#  - hundreds of bad frames crash nothing; responses and source port 0
#    are never answered; good queries are answered after;
#  - the rate limit applies to the program's answers;
#  - SIGTERM takes the program off; config errors name file:line.
#
#   tests/e2e/test_gslb_xdp_answer.sh [BUILD_DIR]     (default: build-asan)
#
# Two private namespaces and a veth pair (gslbd's gy0, the client's gy1 with
# an XDP pass program: a veth takes XDP_TX frames only into a peer with
# NAPI). Both removed on any exit. Exits 77 without root. About 30 s.
# shellcheck disable=SC2016 # bash -c '...' _ ARGS: expanded by that bash
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
NAME=gslba TAG=gslb-xdp-answer
IF=gy0
CIF=gy1
S4=10.202.0.1
S6=fd20:2::1
C4=10.202.0.2
C6=fd20:2::2
# shellcheck source=tests/e2e/gslb_xdp_lib.sh
. "$E2E/gslb_xdp_lib.sh"
# A veth hands XDP_TX frames only to a peer whose NAPI runs: one with an
# XDP program of its own (GRO on is not enough on this kernel).
ncx ip link set dev "$CIF" xdpdrv obj "$BUILD/xdp/pass.bpf.o" sec xdp || exit 1
XDP="xdp = { interface = \"$IF\"; mode = \"answer\"; };"
XA='gslbd_xdp_answer_packets_total{result="answered"}'

# ---- samples and map ----
"$GGEN" --seed 7 --samples 20000 --pops "$D/pops.csv" --out "$D/samples.csv" \
  --asn-out "$D/asn.txt" 2>"$D/gen.log"
mkdir -p "$D/live"
"$GMAP" build --samples "$D/samples.csv" --asn "$D/asn.txt" --seed 7 \
  --publish "$D/live/map.bin" > "$D/map.log" 2>&1
check "gslb-gen and gslb-map made the map" test -s "$D/live/map.bin"

# ---- start ----
write_conf "$D/gslbd.conf" "$XDP"
start_gslbd "$D/gslbd.log" || give_up "gslbd did not start" "$D/gslbd.log"
ok "gslbd started with xdp mode answer on $IF"
check "an XDP program is attached to $IF" xdp_attached
st=$("$LBCTL" --json gslb status 2>&1)
xs=$($PY -c 'import json, sys; x = json.load(sys.stdin).get("xdp") or {}
print(x.get("interface"), x.get("mode"), x.get("port"), x.get("map_loaded"))' <<<"$st" 2>&1)
check "/v1/status: xdp $IF, mode answer, port 53, map loaded ($xs)" test "$xs" = "$IF answer 53 True"

# ---- answers against the map ----
draw_subnets 100
ask_all() { # OUT: the 400 queries, parsed
  local srv t s args
  : > "$1"
  for srv in "$S4" "$S6"; do
    for t in A AAAA; do
      args=()
      while read -r s; do args+=(www.example.test "$t" "+subnet=$s"); done < "$D/subnets"
      kd "@$srv" +noall +answer +opt "${args[@]}" | $PY "$E2E/gslb_answers.py" parse >> "$1"
    done
  done
}
a0=$(metric "$XA"); u0=$(metric "$Q_UDP")
ask_all "$D/got"
a1=$(metric "$XA"); u1=$(metric "$Q_UDP")
check "400 UDP answers with an ECS scope" test "$(wc -l < "$D/got")" = 400
read -r nbad nhits <<<"$(compare_answers "$D/expected" "$D/got")"
check "answers match the map for all $nhits mapped queries of 400 (mismatches: ${nbad:-?})" \
  test "${nbad:-1}" = 0 -a "${nhits:-0}" -gt 200
echo "# program answered $((a1 - a0)), sockets $((u1 - u0))"
check "the program answered the mapped ones ($((a1 - a0)) >= $nhits), the sockets the rest ($((u1 - u0)))" \
  test $((a1 - a0)) -ge "${nhits:-999}" -a $((a1 - a0 + u1 - u0)) -ge 400
line=$(grep 'pops=[a-z]' "$D/expected" | grep -v ':' | head -1)
net=$(awk '{print $1}' <<<"$line")
src=${net%.0/24}.77
want=${V4[$(first_pop "$line")]}
ncx ip addr add "$src/32" dev "$CIF"
out=$(kd "@$S4" -b "$src" www.example.test A +short)
check "no ECS and no route back: the client's address decides ($src -> ${out:-nothing}, want $want)" \
  test "$out" = "$want"
u0=$(metric "$Q_UDP")
out=$(kd "@$S4" example.test SOA +short)
check "SOA answered" grep -q "^ns1.example.test. hostmaster" <<<"$out"
out=$(kd "@$S6" nope.example.test A)
check "NXDOMAIN answered over IPv6" grep -q "status: NXDOMAIN" <<<"$out"
u1=$(metric "$Q_UDP")
check "...by the sockets (udp +$((u1 - u0)))" test $((u1 - u0)) = 2

# ---- TCP ----
t0=$(metric "$Q_TCP")
out=$(kd "@$S4" +tcp www.example.test A "+subnet=$net" +short)
t1=$(metric "$Q_TCP")
check "TCP answered by the kernel's socket (${out:-nothing}, tcp +$((t1 - t0)))" \
  test "$out" = "$want" -a $((t1 - t0)) = 1

# ---- drain, and a new map ----
first=$(first_pop "$line")
second=$([[ $line =~ pops=[a-z]+,([a-z]+) ]] && echo "${BASH_REMATCH[1]}")
"$LBCTL" gslb pop drain "$first" > /dev/null
a0=$(metric "$XA")
out=$(kd "@$S4" www.example.test A "+subnet=$net" +short)
a1=$(metric "$XA")
check "drain $first: $net moves to ${second:-?} at once (${out:-nothing}), in the program (+$((a1 - a0)))" \
  test -n "$second" -a "$out" = "${V4[$second]:-x}" -a $((a1 - a0)) = 1
"$LBCTL" gslb pop undrain "$first" > /dev/null
out=$(kd "@$S4" www.example.test A "+subnet=$net" +short)
check "undrain: back to $first ($out)" test "$out" = "$want"
"$GGEN" --seed 11 --samples 20000 --pops "$D/pops.csv" --out "$D/samples2.csv" \
  --asn-out "$D/asn2.txt" 2>>"$D/gen.log"
"$GMAP" build --samples "$D/samples2.csv" --asn "$D/asn2.txt" --seed 11 \
  --out "$D/map2.bin" > "$D/map2.log" 2>&1
xargs "$GMAP" lookup "$D/map2.bin" < "$D/subnets" > "$D/expected2" 2>>"$D/lookup.err"
mv "$D/map2.bin" "$D/live/map.bin"
for _ in $(seq 30); do
  [ "$("$LBCTL" --json gslb status | $PY -c 'import json,sys; print(json.load(sys.stdin)["map"]["reloads"])')" -ge 2 ] && break
  sleep 0.1
done
ask_all "$D/got2"
read -r nbad2 nhits2 <<<"$(compare_answers "$D/expected2" "$D/got2")"
changed=$(diff "$D/expected" "$D/expected2" | grep -c '^>')
check "a new map: answers match it for all $nhits2 mapped queries (mismatches ${nbad2:-?}; $changed subnets changed)" \
  test "${nbad2:-1}" = 0 -a "${nhits2:-0}" -gt 200

# ---- bad frames ----
a0=$(metric "$XA")
ncx $PY "$FR" bad "$CIF" "$SMAC" "$C4" "$S4" "$C6" "$S6" 53 > "$D/bad.out" 2>&1
sed 's/^/# /' "$D/bad.out"
nbad=$(awk '/^total sent/ { print $3 }' "$D/bad.out")
check "sent ${nbad:-no} bad frames" test "${nbad:-0}" -gt 500
check "...the two well-made frames among them were answered" bash -c \
  'grep -q "^valid-v4 sent 1 answered 1" "$1" && grep -q "^valid-v6 sent 1 answered 1" "$1"' _ "$D/bad.out"
check "...DNS responses and source port 0 never answered" bash -c \
  'grep -q "^responses sent 100 answered 0" "$1" && grep -q "^sport-0 sent 10 answered 0" "$1"' _ "$D/bad.out"
check "...nor martian sources or another destination address" bash -c \
  'grep -Eq "^martian-src sent [1-9][0-9]* answered 0" "$1" && grep -q "^other-dst-ip sent 1 answered 0" "$1"' \
  _ "$D/bad.out"
# Frames to a group MAC go up to the kernel, which answers them from the
# socket as it would without XDP; the program must not (its answer would
# leave from that group MAC). Only the two well-made frames may be its.
a1=$(metric "$XA")
check "...group-MAC frames left to the kernel: the program answered $((a1 - a0)) of all these (<= 2)" \
  test $((a1 - a0)) -le 2
check "gslbd still running" kill -0 "$GPID"
out=$(kd "@$S4" www.example.test A +short "+subnet=$net")
check "...and answering correctly ($out)" test "$out" = "$want"
stop_gslbd TERM
check "SIGTERM: gslbd exited $RC (0)" test "$RC" = 0
if xdp_attached; then bad "...program still attached after SIGTERM"; else ok "...and took its program off $IF"; fi

# ---- rate limit ----
write_conf "$D/gslbd.conf" "$XDP" "rate_limit = { rate = 50; burst = 50; slip = 2; };"
start_gslbd "$D/gslbd2.log" || give_up "gslbd with a rate limit did not start" "$D/gslbd2.log"
res=$(ncx $PY "$E2E/dns_attack.py" flood "$S4" 53 2000)
rd=$(metric 'gslbd_rate_limited_total{action="dropped"}')
rs=$(metric 'gslbd_rate_limited_total{action="slipped"}')
full=$(awk '{print $4 - $6}' <<<"$res")
echo "# flood: $res; rate-limited: dropped $rd slipped $rs"
check "a flood of 2000 is rate limited: ${full:-?} answered in full" test "${full:-2000}" -lt 500
check "...counters moved (dropped $rd, slipped $rs)" test "$rd" -gt 500 -a "$rs" -gt 500
out=$(kd "@$S6" www.example.test AAAA +short)
check "another source still answered (${out:-nothing})" test -n "$out"
stop_gslbd TERM

# ---- kill -9, and a reload that moves the listen port ----
# The program hangs on gslbd's BPF link: however gslbd dies, the kernel
# takes it off (it would answer from frozen PoP states otherwise), and
# the next start is not refused as "another program attached".
write_conf "$D/gslbd.conf" "$XDP"
start_gslbd "$D/gslbd3.log" || give_up "gslbd did not start" "$D/gslbd3.log"
stop_gslbd KILL
for _ in $(seq 50); do xdp_attached || break; sleep 0.1; done
if xdp_attached; then bad "kill -9: the program stayed on $IF"; else ok "kill -9: the program went off $IF with gslbd"; fi
start_gslbd "$D/gslbd4.log" || give_up "gslbd did not start again after kill -9" "$D/gslbd4.log"
ok "...and gslbd started again on $IF"
# listen applies at the next start: after a reload to port 5399 the
# program must still answer port 53 only (as the sockets do).
sed -i 's/:53"/:5399"/g' "$D/gslbd.conf"
kill -HUP "$GPID"
for _ in $(seq 50); do grep -q "configuration reloaded" "$D/gslbd4.log" && break; sleep 0.1; done
a0=$(metric "$XA")
out=$(kd "@$S4" www.example.test A +short "+subnet=$net")
a1=$(metric "$XA")
check "a reload moving listen to :5399: port 53 still answered ($out) by the program (+$((a1 - a0)))" \
  test "$out" = "$want" -a $((a1 - a0)) -ge 1
out=$(kd "@$S4" -p 5399 www.example.test A +short "+subnet=$net")
check "...and nothing answers on 5399 before a restart (${out:-nothing})" test -z "$out"
stop_gslbd TERM

# ---- config errors ----
write_conf "$D/q.conf" "xdp = { interface = \"$IF\"; mode = \"answer\"; queues = 1; };"
out=$(nsx "$GSLBD" --check -c "$D/q.conf" 2>&1); rc=$?
check "--check: queues with mode answer refused, file:line ($out)" \
  bash -c '[ "$1" != 0 ] && grep -q "q.conf:[0-9]*:.*queues" <<<"$2"' _ "$rc" "$out"
write_conf "$D/m.conf" "xdp = { interface = \"$IF\"; mode = \"fast\"; };"
out=$(nsx "$GSLBD" --check -c "$D/m.conf" 2>&1); rc=$?
check "--check: an unknown mode refused, file:line ($out)" \
  bash -c '[ "$1" != 0 ] && grep -q "m.conf:[0-9]*:.*fast" <<<"$2"' _ "$rc" "$out"
write_conf "$D/gslbd.conf" "xdp = { interface = \"nosuch0\"; mode = \"answer\"; };"
out=$(nsx timeout 20 "$GSLBD" -c "$D/gslbd.conf" 2>&1); rc=$?
check "mode answer on a missing interface: start fails ($rc), naming it" \
  bash -c '[ "$1" != 0 ] && [ "$1" != 124 ] && grep -q "nosuch0" <<<"$2"' _ "$rc" "$out"

if cat "$D"/gslbd*.log | grep -q "ERROR: AddressSanitizer\|runtime error"; then
  bad "sanitizer reports in gslbd's logs"
  grep -h -m5 "AddressSanitizer\|runtime error" "$D"/gslbd*.log
else
  ok "no sanitizer report"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
