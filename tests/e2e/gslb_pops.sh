# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# The GSLB e2e scripts' PoPs: five at real cities, with their VIPs (A and
# AAAA) and the anycast fail-open address. Writes $D/pops.csv (gslb-gen's
# --pops) and sets V4, V6 (by PoP name) and ANY4. Expects D to be set.
printf '%s\n' name,lat,lon fra,50.11,8.68 iad,38.95,-77.45 nrt,35.68,139.69 \
  gru,-23.55,-46.63 syd,-33.87,151.21 > "$D/pops.csv"
# shellcheck disable=SC2034 # V4, V6, ANY4: used by the scripts that source this
declare -A V4=([fra]=198.51.100.1 [iad]=198.51.100.2 [nrt]=198.51.100.3 [gru]=198.51.100.4
  [syd]=198.51.100.5)
# shellcheck disable=SC2034
declare -A V6=([fra]=2001:db8:100::1 [iad]=2001:db8:100::2 [nrt]=2001:db8:100::3
  [gru]=2001:db8:100::4 [syd]=2001:db8:100::5)
# shellcheck disable=SC2034
ANY4=192.0.2.100

# first_pop "PREFIX pops=P1,P2 ...": P1, from a `gslb-map lookup` line
first_pop() { [[ $1 =~ pops=([a-z]+) ]] && echo "${BASH_REMATCH[1]}"; }
# Compare answers (gslb_answers.py's parse, file $2) with what the map says
# (file $1), given the PoPs' VIPs: prints "mismatches hits".
compare_answers() {
  local p vips=()
  for p in "${!V4[@]}"; do vips+=("$p=${V4[$p]}=${V6[$p]}"); done
  $PY "$E2E/gslb_answers.py" compare "$1" "$2" "${vips[@]}"
}

# gslb_conf_common NS1_A NS1_AAAA: the zone, fallbacks and PoPs every test
# gslbd.conf shares, after its own listen/workers/socket/map lines
gslb_conf_common() {
  local sep="" p
  cat <<EOC
zones = ( { name = "example.test"; ttl = 30;
  soa = { mname = "ns1"; rname = "hostmaster"; serial = 1; minimum = 60; };
  ns = ["ns1"]; services = ["www"];
  records = ( { name = "ns1"; a = ["$1"]; aaaa = ["$2"]; } ); } );
default = ["fra"];
countries = ( { cc = "US"; pops = ["iad", "fra"]; } );
anycast = { vip4 = "$ANY4"; vip6 = "2001:db8::100"; };
pops = (
EOC
  for p in fra iad nrt gru syd; do
    echo "  $sep{ name = \"$p\"; vip4 = \"${V4[$p]}\"; vip6 = \"${V6[$p]}\"; }"
    sep=", "
  done
  echo ");"
}

# draw_subnets N: N of the generator's clients ($D/samples.csv), shuffled
# with a fixed seed, as their subnets (IPv4 /24, IPv6 /56) in $D/subnets,
# and gslb-map's lookup of each in the published map ($D/live/map.bin),
# the reference, in $D/expected. Uses PY and GMAP.
draw_subnets() {
  grep -E '^[0-9a-f:.]+,' "$D/samples.csv" | cut -d, -f1 | sort -u |
    shuf -n "$1" --random-source=<(yes) > "$D/clients"
  $PY - "$D/clients" > "$D/subnets" <<'EOP'
import ipaddress, sys
for line in open(sys.argv[1]):
    a = ipaddress.ip_address(line.strip())
    print(ipaddress.ip_network("%s/%d" % (a, 24 if a.version == 4 else 56), strict=False))
EOP
  xargs "$GMAP" lookup "$D/live/map.bin" < "$D/subnets" > "$D/expected" 2>"$D/lookup.err"
}
