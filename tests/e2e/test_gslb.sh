#!/usr/bin/env bash
# The GSLB end to end: gslb-gen makes seeded real-user samples, gslb-map
# builds and publishes the map, gslbd serves it, kdig asks. Checked:
#  - SOA, NS, A/AAAA, NXDOMAIN and NODATA with SOA, REFUSED for other zones,
#    over UDP and TCP, from IPv4 and IPv6 clients;
#  - 1,000 random subnets drawn from the samples are answered with the
#    first PoP gslb-map's own lookup of the map file gives, and the ECS
#    scope it gives; a client without ECS is placed by its own address;
#  - a new map published by gslb-map is live in under a second; a corrupt
#    or truncated one (in place, or renamed in) is refused and the old map
#    keeps serving; a bad config reload names file and line and changes
#    nothing;
#  - drain/undrain through lbctl moves a subnet to its next PoP and back;
#    with every PoP down the anycast VIP answers (fail open);
#  - malformed queries (every truncation, mutations, random bytes) get
#    FORMERR or nothing, responses are never answered, slow and half-sent
#    TCP queries hold nothing, and the server keeps answering; a flood from
#    one source is rate-limited (dropped or slipped with TC).
#
#   tests/e2e/test_gslb.sh [BUILD_DIR]     (default: build-asan)
#
# One private network namespace; gslbd on its loopback, clients bound to
# extra loopback addresses. Exits 77 without root. About 20 s.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
GSLBD=$BUILD/gslb/gslbd
GMAP=$BUILD/gslb/mapbuild/gslb-map
GGEN=$BUILD/gslb/tools/gslb-gen
LBCTL=$BUILD/ctl/lbctl
PY=/usr/bin/python3
export ASAN_OPTIONS=detect_leaks=0
# shellcheck source=tests/e2e/tap.sh
. "$E2E/tap.sh"
# shellcheck source=tests/e2e/netns_lib.sh
. "$E2E/netns_lib.sh"
netns_begin "gslb$$" gslb

for b in "$GSLBD" "$GMAP" "$GGEN" "$LBCTL"; do
  [ -x "$b" ] || { echo "not ok - no binary at $b"; echo "0 passed, 1 failed"; exit 1; }
done
command -v kdig >/dev/null || { echo "not ok - kdig (knot-dnsutils) missing"; exit 1; }

S4=127.0.0.53
S6=::1
export LBCTL_GSLB_SOCKET=$D/gslbd.sock

# fra iad nrt gru syd: $D/pops.csv, V4, V6, ANY4
# shellcheck source=tests/e2e/gslb_pops.sh
. "$E2E/gslb_pops.sh"

write_conf() { # extra text appended
  {
    cat <<EOF
listen = ["$S4:53", "[$S6]:53"];
workers = 2;
admin_socket = "$D/gslbd.sock";
map = "$D/live/map.bin";
rate_limit = { rate = 100; burst = 200; slip = 2; };
EOF
    gslb_conf_common "$S4" "2001:db8::53"
    echo "${1:-}"
  } > "$D/gslbd.conf"
}

# ---- samples and map ----
t0=$(date +%s.%N)
"$GGEN" --seed 7 --samples 60000 --pops "$D/pops.csv" --out "$D/samples.csv" \
  --asn-out "$D/asn.txt" 2>"$D/gen.log"
check "gslb-gen made samples ($(wc -l < "$D/samples.csv") lines)" test -s "$D/samples.csv"
mkdir -p "$D/live"
"$GMAP" build --samples "$D/samples.csv" --asn "$D/asn.txt" --seed 7 \
  --publish "$D/live/map.bin" > "$D/map.log" 2>&1
check "gslb-map built and published the map" test -s "$D/live/map.bin"
grep -q "" "$D/map.log" && sed 's/^/# /' "$D/map.log" | head -30
echo "# samples and map in $(echo "$(date +%s.%N) - $t0" | bc) s"

write_conf
nsx ip addr add 127.0.0.53/8 dev lo 2>/dev/null || true
nsx "$GSLBD" -c "$D/gslbd.conf" > "$D/gslbd.log" 2>&1 &
for _ in $(seq 100); do [ -S "$D/gslbd.sock" ] && break; sleep 0.1; done
check "gslbd started" test -S "$D/gslbd.sock"

kd() { nsx kdig +time=2 +retry=0 "$@"; }

# ---- the zone ----
out=$(kd @$S4 example.test SOA +noall +answer)
check "SOA over UDP/IPv4" grep -q "SOA.*ns1.example.test. hostmaster.example.test. 1 " <<<"$out"
out=$(kd @$S6 +tcp example.test NS +noall +answer)
check "NS over TCP/IPv6" grep -q "NS.*ns1.example.test." <<<"$out"
out=$(kd @$S4 nope.example.test A)
check "NXDOMAIN with the SOA, authoritative" bash -c \
  'grep -q "status: NXDOMAIN" <<<"$1" && grep -qi "flags: qr aa" <<<"$1" && grep -q "AUTHORITY SECTION" <<<"$1"' _ "$out"
out=$(kd @$S4 www.example.test TXT)
check "NODATA: NOERROR, no answer, SOA" bash -c \
  'grep -q "status: NOERROR" <<<"$1" && grep -q "ANSWER: 0" <<<"$1" && grep -q "AUTHORITY: 1" <<<"$1"' _ "$out"
out=$(kd @$S4 www.example.com A)
check "REFUSED outside the zones" grep -q "status: REFUSED" <<<"$out"
out=$(kd @$S4 ns1.example.test A +short)
check "static record" test "$out" = "$S4"

# ---- answers against the map, 1,000 random subnets ----
# Subnets from the generator's clients (IPv4 /24, IPv6 /56), shuffled with
# a fixed seed; gslb-map's lookup of the published file is the reference.
draw_subnets 1000
check "gslb-map looked up 1000 subnets" test "$(wc -l < "$D/expected")" = 1000
# kdig, 100 queries per run over TCP (UDP from one source would meet the
# rate limit); one line per query: subnet, answer, scope.
: > "$D/got"
split -l 100 "$D/subnets" "$D/batch."
for f in "$D"/batch.*; do
  args=()
  while read -r s; do args+=(www.example.test A "+subnet=$s"); done < "$f"
  kd @$S4 +tcp +noall +answer +opt "${args[@]}" | $PY "$E2E/gslb_answers.py" parse >> "$D/got"
done
check "1000 answers with an ECS scope" test "$(wc -l < "$D/got")" = 1000
mism=$(compare_answers "$D/expected" "$D/got")
read -r nbad nhits <<<"$mism"
check "answers match the map for all $nhits mapped subnets of 1000 (mismatches: $nbad)" \
  test "$nbad" = 0 -a "$nhits" -gt 500

# A client without ECS is placed by its own address: bind the query's
# source to an address of a mapped subnet.
# An IPv4 subnet whose list has a second PoP (the drain below needs one).
line=$(grep 'pops=[a-z]*,[a-z]' "$D/expected" | grep -v ':' | head -1)
src=$(awk '{print $1}' <<<"$line" | sed 's|\.0/24$|.77|')
want=${V4[$(first_pop "$line")]}
nsx ip addr add "$src/32" dev lo
out=$(kd @$S4 -b "$src" www.example.test A +short)
check "no ECS: the resolver's own address decides ($src -> $out)" test "$out" = "$want"
line6=$(grep 'pops=[a-z]' "$D/expected" | grep ':' | head -1)
if [ -n "$line6" ]; then
  pfx=$(awk '{print $1}' <<<"$line6" | sed 's|::/56$||; s|/56$||')
  src6="${pfx}::77"
  nsx ip -6 addr add "$src6/128" dev lo nodad
  want6=${V6[$(first_pop "$line6")]}
  out=$(kd @$S6 -b "$src6" +tcp www.example.test AAAA +short)
  check "IPv6 client over TCP placed by its address ($src6 -> $out)" test "$out" = "$want6"
else
  bad "no mapped IPv6 subnet among the 1000"
fi

# ---- drain, undrain, down, anycast ----
sub=$(awk '{print $1}' <<<"$line")
first=$(sed 's/.*pops=\([a-z]*\),\([a-z]*\).*/\1/' <<<"$line")
second=$(sed 's/.*pops=\([a-z]*\),\([a-z]*\).*/\2/' <<<"$line")
ask() { kd @$S4 www.example.test A "+subnet=$1" +short; }
"$LBCTL" gslb pop drain "$first" > /dev/null
out=$(ask "$sub")
check "drained $first: $sub moves to $second" test "$out" = "${V4[$second]}"
check "lbctl gslb pop list shows the drain" bash -c \
  '"$0" gslb pop list | grep -q "^$1 *drained"' "$LBCTL" "$first"
"$LBCTL" gslb pop undrain "$first" > /dev/null
out=$(ask "$sub")
check "undrained: back to $first" test "$out" = "${V4[$first]}"
for p in fra iad nrt gru syd; do "$LBCTL" gslb pop down "$p" > /dev/null; done
out=$(ask "$sub")
check "every PoP down: anycast answers (fail open)" test "$out" = "$ANY4"
for p in fra iad nrt gru syd; do "$LBCTL" gslb pop up "$p" > /dev/null; done
out=$(ask "$sub")
check "PoPs up again" test "$out" = "${V4[$first]}"

# ---- bad input ----
res=$(nsx $PY "$E2E/dns_attack.py" garbage $S4 53)
echo "# garbage: $res"
check "malformed queries: a response is never answered" grep -q "answered_responses 0" <<<"$res"
out=$(kd @$S4 www.example.test A +short "+subnet=$sub")
check "...and the server keeps answering" test "$out" = "${V4[$first]}"
res=$(nsx $PY "$E2E/dns_attack.py" tcp-slow $S4 53)
check "half-sent TCP queries hold nothing; pipelined queries answered in order" \
  grep -q "pipelined ok" <<<"$res"
# The flood comes from its own address: the rate limit is per source.
nsx ip addr add 127.9.9.9/32 dev lo
res=$(nsx $PY "$E2E/dns_attack.py" flood $S4 53 3000 127.9.9.9)
echo "# flood: $res"
full=$(awk '{print $4 - $6}' <<<"$res")
check "a flood from one source is rate limited ($full of 3000 answered in full)" \
  test "${full:-3000}" -lt 1000
met=$("$LBCTL" gslb metrics)
check "rate-limit counters moved" bash -c \
  'grep -q "^gslbd_rate_limited_total{action=\"dropped\"} [1-9]" <<<"$1" && grep -q "^gslbd_rate_limited_total{action=\"slipped\"} [1-9]" <<<"$1"' _ "$met"
out=$(kd @$S4 www.example.test A +short "+subnet=$sub")
check "other sources still answered during the flood" test "$out" = "${V4[$first]}"

# ---- a new map, live in under a second ----
# Samples that make $sub prefer another PoP: a tiny data set of its own.
newpop=$second
{
  echo "client,pop,rtt_ms,ok"
  for i in $(seq 1 5); do
    base=${sub%.0/24}
    echo "$base.$i,$newpop,5.0,1"
    echo "$base.$i,$first,50.0,1"
  done
} > "$D/new.csv"
"$GMAP" build --samples "$D/new.csv" --holdout 0 --min-score 0 --out "$D/new.bin" > "$D/new.log" 2>&1
check "built a second map" test -s "$D/new.bin"
t0=$(date +%s%N)
mv "$D/new.bin" "$D/live/map.bin"
live=""
for _ in $(seq 200); do
  [ "$(ask "$sub")" = "${V4[$newpop]}" ] && { live=$(( ($(date +%s%N) - t0) / 1000000 )); break; }
  sleep 0.01
done
check "a published map is live in ${live:-never} ms (< 1000)" test -n "$live" -a "${live:-9999}" -lt 1000

# ---- corrupt maps are refused, the old keeps serving ----
loads() { "$LBCTL" gslb metrics | sed -n 's/^gslbd_map_loads_total{result="refused"} //p'; }
r0=$(loads)
head -c 100 "$D/live/map.bin" > "$D/trunc.bin"
mv "$D/trunc.bin" "$D/live/map.bin.new" && mv "$D/live/map.bin.new" "$D/live/map.bin"
sleep 0.3
check "a truncated map is refused" test "$(loads)" -gt "$r0"
check "...and the old map keeps answering" test "$(ask "$sub")" = "${V4[$newpop]}"
r0=$(loads)
"$GMAP" build --samples "$D/new.csv" --holdout 0 --min-score 0 --out "$D/flip.bin" > /dev/null 2>&1
$PY - "$D/flip.bin" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x40
open(sys.argv[1], "wb").write(b)
EOF
cp "$D/flip.bin" "$D/live/map.bin" # written in place, not renamed
sleep 1.5
check "a map with a flipped bit (written in place) is refused" test "$(loads)" -gt "$r0"
check "...and the old map keeps answering" test "$(ask "$sub")" = "${V4[$newpop]}"
out=$("$LBCTL" gslb reload 2>&1)
check "lbctl gslb reload of the bad file fails and says why" grep -q "checksum" <<<"$out"
check "gslbd is still running" kill -0 "$(pgrep -f "$GSLBD -c $D" | head -1)"

# ---- a bad config reload changes nothing ----
cp "$D/gslbd.conf" "$D/good.conf"
sed -i 's/default = \["fra"\];/default = ["nowhere"];/' "$D/gslbd.conf"
out=$("$LBCTL" gslb reload-config 2>&1)
check "bad config refused with file and line ($out)" grep -q "gslbd.conf:[0-9]*: unknown PoP \"nowhere\"" <<<"$out"
check "...and the server still answers" test "$(ask "$sub")" = "${V4[$newpop]}"
cp "$D/good.conf" "$D/gslbd.conf"

out=$("$LBCTL" gslb status)
check "lbctl gslb status" grep -q "workers *2" <<<"$out"
if command -v promtool > /dev/null; then
  check "metrics pass promtool" bash -c '"$0" gslb metrics | promtool check metrics' "$LBCTL"
fi
kill -TERM "$(pgrep -f "$GSLBD -c $D" | head -1)" 2>/dev/null
sleep 0.5
check "gslbd stopped on SIGTERM" bash -c '! pgrep -f "$0 -c $1" > /dev/null' "$GSLBD" "$D"
if grep -q "ERROR: AddressSanitizer\|runtime error" "$D/gslbd.log"; then
  bad "sanitizer reports in gslbd's log"
  grep -m5 "AddressSanitizer\|runtime error" "$D/gslbd.log"
else
  ok "no sanitizer report"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
