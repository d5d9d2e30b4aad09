#!/usr/bin/env bash
# bench_gslb - gslbd's queries per second and per CPU-second next to gdnsd
# (3.x, geoip plugin) serving the same map and zone, in the same run, with
# gslbd both on its sockets and on AF_XDP; the map's build time and size;
# the time each server takes to apply a new map.
#
#   tests/bench/bench_gslb.sh [--build DIR] [--rounds N] [--seconds S]
#                             [--samples N] [--subnets N]
#
#   --rounds N    interleaved rounds per server (5); the figures are medians
#   --seconds S   dnsperf run per server and round (10)
#   --samples N   gslb-gen samples the map is built from (1000000)
#   --subnets N   distinct ECS subnets in the query mix (5000)
#   env: SERVER_CPU (0), CLIENT_CPU (1), OUTSTANDING (dnsperf -q, 500),
#        APPLY_TIMEOUT (s, 30)
#
# The map: gslb-gen samples (8 PoPs) -> gslb-map build -> map.bin, which
# gslbd loads; `gslb-map gdnsd-nets` writes the same map as gdnsd's nets
# file. The servers: zone example.test, `www` answered from the map with
# the first PoP's IPv4 VIP, one thread answering (gslbd workers = 1, no rate
# limit; gdnsd udp_threads = 1), pinned to SERVER_CPU:
#   gslbd      its UDP sockets (recvmmsg/sendmmsg)
#   gslbd-xdp  the same binary with `xdp` on the server's veth: libknot's
#              XDP program hands the queries to an AF_XDP socket (copy mode:
#              a veth has no zero-copy), the kernel's UDP path is skipped
#   gslbd-xa   the same binary with xdp mode "answer" on a second veth
#              pair (10.212.0.1; an XDP program can own only one veth):
#              its own XDP program answers the query in the driver
#              (XDP_TX) and passes everything else to the sockets
#   gdnsd      its UDP sockets
# Network: two namespaces joined by a veth pair, the servers on 10.211.0.1
# (each its own port), dnsperf (one thread) on 10.211.0.2 pinned to
# CLIENT_CPU. Each veth end receives in a threaded-NAPI kthread pinned to
# its side's CPU (GRO on, TSO/GSO off so the kernel takes that path): as
# between two machines, the server's CPU pays for receiving the queries and
# sending the answers, the client's CPU for the rest. (Without it a veth
# receives on the sender's CPU, and the client's CPU would carry part of
# each server's work: the XDP program's, or the kernel's UDP input.)
# Queries: www.example.test A, each with its own EDNS Client Subnet (IPv4
# /24 and IPv6 /56 subnets of the samples), built as wire messages by
# gslb_queries.py and sent by dnsperf -B (its text input has no per-query
# EDNS options). Before measuring, both servers and `gslb-map lookup` are
# asked about 200 of the subnets: they should agree on every one.
# CPU is SERVER_CPU's busy time over the run (/proc/stat: user, system,
# irq, softirq: the server process and its NAPI kthread, so the XDP
# program's work counts); "busy" near 100% means the server, not dnsperf,
# set the pace. Below that the client limited the rate: compare queries per
# CPU-second.
# Apply time: from the rename of a new map (another seed) into place to the
# first query answered from it, polled every 10 ms.
# Prints figures, never a verdict: exit 0 unless the setup failed (77: not
# root). Root; about 2 × rounds × seconds plus the map builds.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CMDLINE="tests/bench/bench_gslb.sh${*:+ $*}"
BUILD=$REPO/build
ROUNDS=5
SECS=10
SAMPLES=1000000
SUBNETS=5000
CHECK=200
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUTSTANDING=${OUTSTANDING:-500} # -q 100 leaves gdnsd ~75% busy here: a window, not CPU, limits it
APPLY_TIMEOUT=${APPLY_TIMEOUT:-30}
PY=/usr/bin/python3
HELPER=$REPO/tests/bench/gslb_queries.py
GPORT=5301 # gslbd
DPORT=5302 # gdnsd
XPORT=5303 # gslbd-xdp
APORT=5304 # gslbd-xa
SADDR=10.211.0.1
CADDR=10.211.0.2
SADDR2=10.212.0.1 # gslbd-xa's veth pair
CADDR2=10.212.0.2

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench_gslb: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --seconds) SECS=${2:?}; shift 2 ;;
    --samples) SAMPLES=${2:?}; shift 2 ;;
    --subnets) SUBNETS=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
for v in ROUNDS SECS SAMPLES SUBNETS OUTSTANDING APPLY_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not \"${!v}\""
done

[ "$(id -u)" -eq 0 ] || { echo "bench_gslb: needs root (netns)"; exit 77; }
GSLBD=$BUILD/gslb/gslbd
GMAP=$BUILD/gslb/mapbuild/gslb-map
GGEN=$BUILD/gslb/tools/gslb-gen
LBCTL=$BUILD/ctl/lbctl
for b in "$GSLBD" "$GMAP" "$GGEN" "$LBCTL" "$PY"; do [ -x "$b" ] || die "no binary at $b"; done
for c in gdnsd dnsperf kdig taskset; do command -v $c >/dev/null || die "needs $c"; done
[ -f "$HELPER" ] || die "no $HELPER"
if pgrep -x ninja >/dev/null || pgrep -x cc1 >/dev/null; then
  echo "# warning: a build is running on this machine: the figures will be noisy" >&2
fi

NS=gslbbench$$   # the servers
NSC=gslbbenchc$$ # dnsperf
VS=gbs$$ VC=gbc$$ # the veth ends
VS2=gas$$ VC2=gac$$ # gslbd-xa's
DIR=$(mktemp -d /tmp/portico-gslbbench.XXXXXX)
# bench_cleanup (kills everything in NS, deletes NS and DIR), nsx, median, HZ
# shellcheck source=tests/bench/proxy_bench_lib.sh
. "$REPO/tests/bench/proxy_bench_lib.sh"
cleanup() {
  local p
  for p in $(ip netns pids "$NSC" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$NSC" 2>/dev/null || true
  bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ncx() { ip netns exec "$NSC" "$@"; }
ip netns add "$NS"
ip netns add "$NSC"
nsx ip link set lo up
ncx ip link set lo up
veth_pair() { # SERVER_END CLIENT_END SERVER_ADDR CLIENT_ADDR
  ip link add "$1" netns "$NS" type veth peer name "$2" netns "$NSC"
  nsx ip addr add "$3/24" dev "$1"
  ncx ip addr add "$4/24" dev "$2"
  nsx ip link set "$1" up
  ncx ip link set "$2" up
  nsx ethtool -K "$1" gro on tso off gso off > /dev/null
  # tx checksum off on the client: a native-XDP veth peer needs whole checksums
  ncx ethtool -K "$2" gro on tso off gso off tx off > /dev/null
}
veth_pair "$VS" "$VC" $SADDR $CADDR
veth_pair "$VS2" "$VC2" $SADDR2 $CADDR2
# A veth takes XDP_TX frames only into a peer that runs XDP itself.
ncx ip link set dev "$VC2" xdpdrv obj "$BUILD/xdp/pass.bpf.o" sec xdp
# napi_pin NS VETH CPU: VETH receives in a NAPI kthread pinned to CPU
napi_pin() {
  local t p
  ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded"
  t=$(pgrep "^napi/$2-" || true)
  [ -n "$t" ] || die "no NAPI kthread for $2"
  for p in $t; do taskset -pc "$3" "$p" > /dev/null; done
}
cpu_busy() { # busy ticks of CPU $1 so far (user nice system irq softirq; not
  # steal: the hypervisor's time is not the server's)
  awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

fmt() { awk -v n="$1" 'BEGIN{printf "%.0f", n}' | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", (b > 0 ? a / b : 0)}'; }
# timed OUT CMD...: run CMD; OUT gets "wall_s cpu_s max_rss_kb"
timed() {
  local out=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$out.raw" "$@" || return
  tail -1 "$out.raw" | awk '{printf "%.2f %.2f %d\n", $1, $2 + $3, $4}' > "$out"
}
kd() { local port=$1; shift; ncx kdig +time=1 +retry=1 "@${ADDR[$port]:-$SADDR}" -p "$port" "$@"; }
declare -A ADDR=([$APORT]=$SADDR2)
wait_dns() { # PORT NAME LOG: until the server answers the SOA
  for _ in $(seq 100); do
    kd "$1" example.test SOA +short 2>/dev/null | grep -q hostmaster && return 0
    sleep 0.1
  done
  tail -20 "$3" >&2
  die "$2 does not answer on ${ADDR[$1]:-$SADDR}:$1"
}

# ---- PoPs and VIPs ----
POPS=(fra lhr iad sjc gru sin nrt syd)
declare -A LAT=([fra]=50.11 [lhr]=51.47 [iad]=38.95 [sjc]=37.36 [gru]=-23.43 [sin]=1.36
  [nrt]=35.77 [syd]=-33.95)
declare -A LON=([fra]=8.68 [lhr]=-0.45 [iad]=-77.45 [sjc]=-121.93 [gru]=-46.47 [sin]=103.99
  [nrt]=140.39 [syd]=151.18)
declare -A VIP4 VIP6
{
  echo "name,lat,lon"
  i=1
  for p in "${POPS[@]}"; do
    echo "$p,${LAT[$p]},${LON[$p]}"
    VIP4[$p]=198.51.100.$i
    VIP6[$p]=2001:db8:100::$i
    i=$((i + 1))
  done
} > "$DIR/pops.csv"

# ---- samples, map, gdnsd nets ----
echo "# gslb-gen: $SAMPLES samples over ${#POPS[@]} PoPs ..."
timed "$DIR/gen.t" "$GGEN" --seed 1 --samples "$SAMPLES" --pops "$DIR/pops.csv" \
  --out "$DIR/samples.csv" --asn-out "$DIR/asn.txt" 2>"$DIR/gen.log" ||
  { cat "$DIR/gen.log" >&2; die "gslb-gen failed"; }
read -r GEN_WALL _ _ < "$DIR/gen.t"
echo "# gslb-map build ..."
timed "$DIR/build.t" "$GMAP" build --samples "$DIR/samples.csv" --asn "$DIR/asn.txt" \
  --out "$DIR/map.bin" > "$DIR/build.log" 2>"$DIR/build.err" ||
  { cat "$DIR/build.log" "$DIR/build.err" >&2; die "gslb-map build failed"; }
read -r BUILD_WALL BUILD_CPU BUILD_RSS < "$DIR/build.t"
tail -1 "$DIR/gen.log" | sed 's/^/#   /'
awk '$1 ~ /^(clean_samples|subnets|extrapolated_prefixes|entries|holdout_correct|holdout_coverage|build_seconds)$/ \
  { printf "%s%s %s", (n++ ? ", " : "#   gslb-map: "), $1, $2 } END { print "" }' "$DIR/build.log"
"$GMAP" info "$DIR/map.bin" > "$DIR/info"
info() { awk -v k="$1" '$1 == k {print $2}' "$DIR/info"; }
MAP_BYTES=$(info file_size)
IFS=, read -r -a MAPPOPS <<< "$(info pop_names)"
# gdnsd's datacenters: the map's PoPs in its order, then any it does not name
DCS=("${MAPPOPS[@]}")
for p in "${POPS[@]}"; do [[ " ${DCS[*]} " == *" $p "* ]] || DCS+=("$p"); done
for p in "${DCS[@]}"; do [ -n "${VIP4[$p]:-}" ] || die "the map names an unknown PoP \"$p\""; done
mkdir -p "$DIR/gdnsd/zones" "$DIR/gdnsd/geoip" "$DIR/gdnsd/run" "$DIR/gdnsd/state" "$DIR/live" "$DIR/stage"
# shellcheck disable=SC2016 # expanded by sh
timed "$DIR/nets.t" sh -c '"$1" gdnsd-nets "$2" > "$3"' _ "$GMAP" "$DIR/map.bin" \
  "$DIR/gdnsd/geoip/nets.txt" 2>"$DIR/nets.err" || { cat "$DIR/nets.err" >&2; die "gslb-map gdnsd-nets failed"; }
read -r NETS_WALL _ _ < "$DIR/nets.t"
NETS_LINES=$(grep -vc '^#' "$DIR/gdnsd/geoip/nets.txt" || true)
NETS_BYTES=$(stat -c %s "$DIR/gdnsd/geoip/nets.txt")
[ -s "$DIR/nets.err" ] && sed 's/^/#   /' "$DIR/nets.err"
cp "$DIR/map.bin" "$DIR/live/map.bin"
printf '# map: %s bytes, %s IPv4 + %s IPv6 entries, %s + %s nodes, %s lists, PoPs %s; gdnsd nets: %s lines\n' \
  "$(fmt "$MAP_BYTES")" "$(fmt "$(info entries4)")" "$(fmt "$(info entries6)")" \
  "$(fmt "$(info nodes4)")" "$(fmt "$(info nodes6)")" "$(info lists)" "$(info pop_names)" \
  "$(fmt "$NETS_LINES")"

# ---- gslbd, on its sockets and on AF_XDP ----
DEFAULT=$(printf '"%s", ' "${DCS[@]:0:8}")
gslbd_conf() { # PORT ADMIN_SOCKET [XDP_INTERFACE [answer]]
  local x="" a=$SADDR
  [ -n "${3:-}" ] && x="xdp = { interface = \"$3\"; queues = 1; };"
  [ -n "${4:-}" ] && x="xdp = { interface = \"$3\"; mode = \"answer\"; };" a=$SADDR2
  cat <<EOC
listen = ["$a:$1"];
workers = 1;
admin_socket = "$2";
$x
map = "$DIR/live/map.bin";
rate_limit = { rate = 0; burst = 1; };
zones = ( { name = "example.test"; ttl = 30; static_ttl = 3600;
  soa = { mname = "ns1"; rname = "hostmaster"; serial = 1; refresh = 3600; retry = 600;
          expire = 86400; minimum = 60; ttl = 3600; };
  ns = ["ns1"]; services = ["www"];
  records = ( { name = "ns1"; a = ["127.0.0.1"]; } ); } );
default = [${DEFAULT%, }];   # gdnsd's default: its datacenters in order
pops = (
EOC
  local sep=" " p
  for p in "${POPS[@]}"; do
    echo " $sep{ name = \"$p\"; vip4 = \"${VIP4[$p]}\"; vip6 = \"${VIP6[$p]}\"; }"
    sep=","
  done
  echo ");"
}
gslbd_conf $GPORT "$DIR/gslbd.sock" > "$DIR/gslbd.conf"
gslbd_conf $XPORT "$DIR/gslbd-xdp.sock" "$VS" > "$DIR/gslbd-xdp.conf"
gslbd_conf $APORT "$DIR/gslbd-xa.sock" "$VS2" answer > "$DIR/gslbd-xa.conf"
for c in gslbd gslbd-xdp gslbd-xa; do
  "$GSLBD" --check -c "$DIR/$c.conf" > "$DIR/$c.check" 2>&1 ||
    { cat "$DIR/$c.check" >&2; die "gslbd refuses its configuration $c.conf"; }
done
nsx taskset -c "$SERVER_CPU" "$GSLBD" -c "$DIR/gslbd.conf" > "$DIR/gslbd.log" 2>&1 &
wait_dns $GPORT gslbd "$DIR/gslbd.log"
nsx taskset -c "$SERVER_CPU" "$GSLBD" -c "$DIR/gslbd-xdp.conf" > "$DIR/gslbd-xdp.log" 2>&1 &
wait_dns $XPORT gslbd-xdp "$DIR/gslbd-xdp.log"
nsx ip link show "$VS" | grep -q 'prog/xdp' || die "gslbd-xdp attached no XDP program to $VS"
nsx taskset -c "$SERVER_CPU" "$GSLBD" -c "$DIR/gslbd-xa.conf" > "$DIR/gslbd-xa.log" 2>&1 &
wait_dns $APORT gslbd-xa "$DIR/gslbd-xa.log"
nsx ip link show "$VS2" | grep -q 'prog/xdp' || die "gslbd-xa attached no XDP program to $VS2"

# ---- gdnsd ----
GDNSD_VERSION=$(gdnsd -V 2>&1 | grep -o 'version [0-9.]*' | head -1 || true)
{
  cat <<EOC
options => {
  listen => [ $SADDR:$DPORT ]
  udp_threads => 1
  tcp_threads => 1
  zones_rfc1035_threads => 1
  run_dir => "$DIR/gdnsd/run"
  state_dir => "$DIR/gdnsd/state"
}
plugins => {
  geoip => {
    maps => {
      bench => {
        # no geoip2_db: the nets file alone; addresses it does not cover
        # get the datacenters in this order (gslbd's default, the same)
        datacenters => [ $(printf '%s, ' "${DCS[@]}" | sed 's/, $//') ]
        nets => nets.txt
      }
    }
    resources => {
      www => {
        map => bench
        dcmap => {
EOC
  for p in "${DCS[@]}"; do echo "          $p => ${VIP4[$p]}"; done
  cat <<EOC
        }
      }
    }
  }
}
EOC
} > "$DIR/gdnsd/config"
cat > "$DIR/gdnsd/zones/example.test" <<'EOZ'
$TTL 3600
@    SOA ns1 hostmaster 1 3600 600 86400 60
@    NS  ns1
ns1  A   127.0.0.1
www  30  DYNA geoip!www
EOZ
gdnsd -c "$DIR/gdnsd" checkconf > "$DIR/gdnsd.check" 2>&1 ||
  { tail -20 "$DIR/gdnsd.check" >&2; die "gdnsd checkconf failed"; }
nsx taskset -c "$SERVER_CPU" gdnsd -c "$DIR/gdnsd" start > "$DIR/gdnsd.log" 2>&1 &
wait_dns $DPORT gdnsd "$DIR/gdnsd.log"
ns_pid() { # the one process called $1 in the namespace
  local p found=""
  for p in $(ip netns pids "$NS"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && found+="$p "
  done
  [ "$(wc -w <<<"$found")" = 1 ] || die "not one $1 process in $NS: ${found:-none}"
  echo "${found% }"
}
ns_pid gdnsd > /dev/null # exactly one
# Every server up (the XDP program attached): now each side's receive path
# goes to its own CPU.
napi_pin "$NS" "$VS" "$SERVER_CPU"
napi_pin "$NSC" "$VC" "$CLIENT_CPU"
napi_pin "$NS" "$VS2" "$SERVER_CPU"
napi_pin "$NSC" "$VC2" "$CLIENT_CPU"
xa_answered() { # gslbd-xa's answers from its XDP program so far
  nsx "$LBCTL" -g "$DIR/gslbd-xa.sock" gslb metrics 2>/dev/null |
    awk '/^gslbd_xdp_answer_packets_total\{result="answered"\}/ { print $2 }'
}
xdp_queries() { # gslbd-xdp's queries taken through AF_XDP so far
  nsx "$LBCTL" -g "$DIR/gslbd-xdp.sock" gslb metrics 2>/dev/null |
    awk '/^gslbd_queries_total\{transport="xdp"\}/ { print $2 }'
}

# ---- queries: one ECS subnet each ----
$PY "$HELPER" subnets "$DIR/samples.csv" "$SUBNETS" 1 > "$DIR/subnets"
NSUB=$(wc -l < "$DIR/subnets")
[ "$NSUB" -ge "$CHECK" ] || die "only $NSUB distinct subnets in the samples"
$PY "$HELPER" wire "$DIR/subnets" "$DIR/queries.bin"
NV6=$(grep -c : "$DIR/subnets" || true)
echo "# queries: www.example.test A with ECS, $(fmt "$NSUB") subnets ($((NSUB - NV6)) IPv4 /24, $NV6 IPv6 /56), dnsperf -B"

# ---- both servers and the map agree ----
head -n "$CHECK" "$DIR/subnets" > "$DIR/check"
xargs "$GMAP" lookup "$DIR/live/map.bin" < "$DIR/check" > "$DIR/expected"
ask() { ncx env GSLB_SERVER=$SADDR $PY "$HELPER" ask "$@"; }
ask $GPORT "$DIR/check" > "$DIR/got.gslbd"
ask $DPORT "$DIR/check" > "$DIR/got.gdnsd"
x0=$(xdp_queries)
ask $XPORT "$DIR/check" > "$DIR/got.gslbd-xdp"
x1=$(xdp_queries)
BAD_XDP=$(paste -d' ' "$DIR/got.gslbd" "$DIR/got.gslbd-xdp" | awk '$1 != $4 || $2 != $5 || $3 != $6' | wc -l)
echo "# gslbd-xdp vs gslbd over the same $CHECK subnets: $BAD_XDP differences; $((x1 - x0)) of them taken by AF_XDP"
[ $((x1 - x0)) -ge "$CHECK" ] || echo "# WARNING: gslbd-xdp answered from its sockets, not AF_XDP"
x0=$(xa_answered)
ncx env GSLB_SERVER=$SADDR2 $PY "$HELPER" ask $APORT "$DIR/check" > "$DIR/got.gslbd-xa"
x1=$(xa_answered)
BAD_XA=$(paste -d' ' "$DIR/got.gslbd" "$DIR/got.gslbd-xa" | awk '$1 != $4 || $2 != $5 || $3 != $6' | wc -l)
echo "# gslbd-xa vs gslbd over the same $CHECK subnets: $BAD_XA differences; $((x1 - x0)) answered by its XDP program (the rest: no map entry, the sockets)"
vipmap=$(for p in "${DCS[@]}"; do printf '%s=%s ' "$p" "${VIP4[$p]}"; done)
read -r N_MAPPED BAD_MAP BAD_PAIR <<<"$(paste -d' ' "$DIR/expected" "$DIR/got.gslbd" "$DIR/got.gdnsd" |
  awk -v vm="$vipmap" -v def="${VIP4[${DCS[0]}]}" '
    BEGIN { n = split(vm, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], x, "="); vip[x[1]] = x[2] } }
    { pops = $2; sub(/^pops=/, "", pops); split(pops, l, ",")
      want = (pops == "-") ? def : vip[l[1]]; mapped += (pops != "-")
      if ($6 != want) { badmap++; print "gslbd " $5 ": " $6 ", the map says " want > "/dev/stderr" }
      if ($6 != $9) { badpair++; print "gdnsd " $8 ": " $9 ", gslbd " $6 > "/dev/stderr" } }
    END { print mapped + 0, badmap + 0, badpair + 0 }' 2>"$DIR/mismatches")"
echo "# agreement over $CHECK subnets ($N_MAPPED in the map, the rest default): gslbd vs gslb-map lookup $BAD_MAP mismatches, gdnsd vs gslbd $BAD_PAIR mismatches"
if [ "$BAD_MAP" != 0 ] || [ "$BAD_PAIR" != 0 ]; then
  echo "# WARNING: the servers do not give the same answers; first mismatches:"
  head -10 "$DIR/mismatches" | sed 's/^/#   /'
fi
# a few in the map with different PoPs, none the default one: two IPv4, one IPv6
show=$(awk -v def="${DCS[0]}" '{ p = $2; sub(/^pops=/, "", p); sub(/,.*/, "", p); v = ($1 ~ /:/) }
  p != "-" && p != def && !(p in seen) && n[v] < (v ? 1 : 2) { seen[p]; n[v]++; print $1 }' "$DIR/expected")
for s in $show; do
  printf '#   kdig +subnet=%s: gslbd %s, gdnsd %s\n' "$s" \
    "$(kd $GPORT www.example.test A +subnet="$s" +short | paste -sd,)" \
    "$(kd $DPORT www.example.test A +subnet="$s" +short | paste -sd,)"
done

# ---- throughput: interleaved rounds ----
SERVERS=(gslbd-xa gslbd-xdp gslbd gdnsd)
declare -A PORT=([gslbd]=$GPORT [gslbd-xdp]=$XPORT [gslbd-xa]=$APORT [gdnsd]=$DPORT)
# run PORT: "qps completed lost cpu_s rcodes response_bytes"
run() {
  local port=$1 c0 c1 out
  c0=$(cpu_busy "$SERVER_CPU")
  out=$(ncx taskset -c "$CLIENT_CPU" dnsperf -B -d "$DIR/queries.bin" -s "${ADDR[$port]:-$SADDR}" -p "$port" \
    -l "$SECS" -T 1 -c 1 -q "$OUTSTANDING" -t 1 2>&1) || { echo "$out" >&2; die "dnsperf failed"; }
  c1=$(cpu_busy "$SERVER_CPU")
  awk -v t=$((c1 - c0)) -v hz="$HZ" '
    /Queries completed:/ { done = $3 } /Queries lost:/ { lost = $3 }
    /Queries per second:/ { qps = $4 } /Average packet size:/ { resp = $7 }
    /Response codes:/ { sub(/.*Response codes: */, ""); n = split($0, f, /, */); rc = ""
      for (i = 1; i <= n; i++) { split(f[i], w, " "); gsub(/[()]/, "", w[3]); rc = rc (i > 1 ? "," : "") w[1] ":" w[3] } }
    END { printf "%.0f %d %d %.2f %s %d\n", qps, done, lost, t / hz, rc, resp }' <<<"$out"
}
declare -A R E
for who in "${SERVERS[@]}"; do # warm-up, not counted
  SECS=1 run "${PORT[$who]}" > /dev/null
done
x0=$(xdp_queries)
a0=$(xa_answered)
printf '# %-5s %-9s %12s %12s %8s %8s %6s %14s %6s  %s\n' round server queries/s completed lost cpu_s busy q/cpu-s resp_B rcodes
for ((r = 1; r <= ROUNDS; r++)); do
  # each server first, second and last in turn
  order=("${SERVERS[@]:$((r % 4))}" "${SERVERS[@]:0:$((r % 4))}")
  for who in "${order[@]}"; do
    read -r qps ndone lost cpu rc resp < <(run "${PORT[$who]}")
    eff=$(awk -v n="$ndone" -v c="$cpu" 'BEGIN{printf "%.0f", (c > 0 ? n / c : 0)}')
    busy=$(awk -v c="$cpu" -v s="$SECS" 'BEGIN{printf "%.0f", 100 * c / s}')
    R[$who.qps]+="$qps " R[$who.lost]+="$lost " R[$who.eff]+="$eff " R[$who.busy]+="$busy "
    E[$r.$who]=$eff
    [ "$who" = gslbd-xdp ] && XDP_DONE=$((${XDP_DONE:-0} + ndone))
    [ "$who" = gslbd-xa ] && XA_DONE=$((${XA_DONE:-0} + ndone))
    printf '# %-5s %-9s %12s %12s %8s %8s %5s%% %14s %6s  %s\n' "$r" "$who" "$(fmt "$qps")" "$(fmt "$ndone")" \
      "$lost" "$cpu" "$busy" "$(fmt "$eff")" "$resp" "$rc"
    [ "$rc" = NOERROR:100.00% ] || echo "# warning: $who: not every answer was NOERROR: $rc"
  done
done
x1=$(xdp_queries)
a1=$(xa_answered)
echo "# gslbd-xa: $(fmt $((a1 - a0))) answers from its XDP program for $(fmt "$XA_DONE") answers dnsperf counted (the rest from its sockets: subnets the map does not hold)"
echo "# gslbd-xdp: $(fmt $((x1 - x0))) queries taken by AF_XDP for $(fmt "$XDP_DONE") answers dnsperf counted"
[ $((x1 - x0)) -ge "$XDP_DONE" ] || echo "# WARNING: some of gslbd-xdp's answers came from its sockets"
med() { tr ' ' '\n' <<<"${R[$1]}" | grep . | median; }
# The machine's load drifts between rounds more than within one (the three
# runs of a round are back to back): the median of each round's own ratio
# is the steadier comparison.
round_ratio() { # SERVER: median over rounds of its q/cpu-s over gdnsd's
  local r
  for ((r = 1; r <= ROUNDS; r++)); do
    awk -v a="${E[$r.$1]}" -v b="${E[$r.gdnsd]}" 'BEGIN { if (b > 0) printf "%.3f\n", a / b }'
  done | sort -n | awk '{ v[NR] = $1 } END { printf "%.2fx", v[int((NR + 1) / 2)] }'
}
declare -A M
for k in qps lost eff busy; do for who in "${SERVERS[@]}"; do M[$who.$k]=$(med "$who.$k"); done; done
for who in "${SERVERS[@]}"; do
  [ "${M[$who.busy]}" -ge 90 ] ||
    echo "# note: $who kept its CPU busy ${M[$who.busy]}%: not saturated (dnsperf or other load on the machine limited it): compare queries per CPU-second"
done

# ---- what one query costs the XDP answer program, alone ----
# BPF_PROG_TEST_RUN on the same map and queries (no veth, no NAPI): the
# program's own share of gslbd-xa's CPU, next to dns_answer in user space.
XA_COST=""
if [ -x "$BUILD/tests/bench/bench_gslb_xdp" ]; then
  taskset -c "$SERVER_CPU" "$BUILD/tests/bench/bench_gslb_xdp" "$DIR/gslbd-xa.conf" "$DIR/queries.bin" 5 \
    > "$DIR/xa_cost" 2>&1 || true
  sed 's/^/# /' "$DIR/xa_cost"
  XA_COST=$(sed -n 's/^xdp answer program: median \([0-9]*\) ns.*in user space: \([0-9.]*\) ns.*/\1 ns (dns_answer in user space: \2 ns)/p' "$DIR/xa_cost")
fi

# ---- time to apply a new map ----
echo "# a new map (samples of seed 2) ..."
"$GGEN" --seed 2 --samples "$SAMPLES" --pops "$DIR/pops.csv" --out "$DIR/samples2.csv" \
  2>"$DIR/gen2.log" || { cat "$DIR/gen2.log" >&2; die "gslb-gen failed"; }
cp "$DIR/live/map.bin" "$DIR/stage/map.bin"
HOW="gslb-map build --publish"
set +e
"$GMAP" build --samples "$DIR/samples2.csv" --asn "$DIR/asn.txt" --publish "$DIR/stage/map.bin" \
  --quiet > "$DIR/build2.log" 2>&1
rc=$?
set -e
if [ $rc = 3 ]; then # the publish gate refused it: the figure is about applying, not gating
  HOW="gslb-map build --out, as the publish gate refused it"
  grep -h 'refusing' "$DIR/build2.log" | sed 's/^/#   /' || true
  "$GMAP" build --samples "$DIR/samples2.csv" --asn "$DIR/asn.txt" --out "$DIR/stage/map.bin" \
    --quiet > "$DIR/build2.log" 2>&1 || { cat "$DIR/build2.log" >&2; die "gslb-map build (2) failed"; }
elif [ $rc != 0 ]; then
  cat "$DIR/build2.log" >&2; die "gslb-map build (2) failed"
fi
"$GMAP" gdnsd-nets "$DIR/stage/map.bin" > "$DIR/stage/nets.txt" 2>/dev/null
# a subnet whose first PoP differs between the maps (IPv4 first)
head -n 2000 "$DIR/subnets" > "$DIR/cand"
xargs "$GMAP" lookup "$DIR/live/map.bin" < "$DIR/cand" > "$DIR/l1"
xargs "$GMAP" lookup "$DIR/stage/map.bin" < "$DIR/cand" > "$DIR/l2"
read -r MOVED OLDPOP NEWPOP <<<"$(paste -d' ' "$DIR/l1" "$DIR/l2" | awk '
  { a = $2; b = $6; sub(/^pops=/, "", a); sub(/^pops=/, "", b); sub(/,.*/, "", a); sub(/,.*/, "", b)
    if (a != "-" && b != "-" && a != b) { k = ($1 ~ /:/) ? 6 : 4; if (!(k in s)) s[k] = $1 " " a " " b } }
  END { print (4 in s) ? s[4] : s[6] }')"
APPLY_GSLBD=n/a APPLY_GDNSD=n/a
if [ -z "${MOVED:-}" ]; then
  echo "# warning: no subnet changes its answer between the two maps: apply times not measured"
else
  echo "# apply: $MOVED moves from $OLDPOP to $NEWPOP ($HOW, then a rename into place)"
  APPLY_GSLBD=$(ncx env GSLB_SERVER=$SADDR $PY "$HELPER" apply $GPORT "$MOVED" "${VIP4[$OLDPOP]}" "${VIP4[$NEWPOP]}" \
    "$DIR/stage/map.bin" "$DIR/live/map.bin" "$APPLY_TIMEOUT") || APPLY_GSLBD=failed
  APPLY_GDNSD=$(ncx env GSLB_SERVER=$SADDR $PY "$HELPER" apply $DPORT "$MOVED" "${VIP4[$OLDPOP]}" "${VIP4[$NEWPOP]}" \
    "$DIR/stage/nets.txt" "$DIR/gdnsd/geoip/nets.txt" "$APPLY_TIMEOUT") || APPLY_GDNSD=failed
  echo "# apply: gslbd $APPLY_GSLBD ms, gdnsd $APPLY_GDNSD ms (timeout ${APPLY_TIMEOUT} s)"
fi
ms() { case $1 in [0-9]*) echo "$(fmt "$1") ms" ;; timeout) echo "> ${APPLY_TIMEOUT} s (timeout)" ;; *) echo "$1" ;; esac; }

# ---- summary ----
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1 || true)
BUILDTYPE=$($PY -c 'import json, sys
o = {x["name"]: x["value"] for x in json.load(open(sys.argv[1]))}
print("%s build (-O%s%s)" % (o["buildtype"], o["optimization"], ", sanitize=" + o["b_sanitize"] if o.get("b_sanitize", "none") != "none" else ""))' \
  "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo "unknown build type")
echo
echo "## GSLB: gslbd vs gdnsd (median of $ROUNDS rounds × $SECS s, dnsperf -T 1 -q $OUTSTANDING over a veth, $(fmt "$NSUB") ECS subnets)"
echo
echo "| figure | gslbd, XDP answers | gslbd, AF_XDP | gslbd, sockets | gdnsd${GDNSD_VERSION:+ ${GDNSD_VERSION#version }} | XDP answers/gdnsd | AF_XDP/gdnsd | sockets/gdnsd |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
row() { # LABEL KEY
  echo "| $1 | $(fmt "${M[gslbd-xa.$2]}") | $(fmt "${M[gslbd-xdp.$2]}") | $(fmt "${M[gslbd.$2]}") | $(fmt "${M[gdnsd.$2]}") |" \
    "$(ratio "${M[gslbd-xa.$2]}" "${M[gdnsd.$2]}") | $(ratio "${M[gslbd-xdp.$2]}" "${M[gdnsd.$2]}") | $(ratio "${M[gslbd.$2]}" "${M[gdnsd.$2]}") |"
}
row "queries per CPU-second (server CPU, NAPI included)" eff
echo "| the same, median of each round's ratio | | | | | $(round_ratio gslbd-xa) | $(round_ratio gslbd-xdp) | $(round_ratio gslbd) |"
row "queries/s" qps
echo "| server CPU busy | ${M[gslbd-xa.busy]}% | ${M[gslbd-xdp.busy]}% | ${M[gslbd.busy]}% | ${M[gdnsd.busy]}% | | | |"
echo "| lost queries per run | ${M[gslbd-xa.lost]} | ${M[gslbd-xdp.lost]} | ${M[gslbd.lost]} | ${M[gdnsd.lost]} | | | |"
echo "| time to apply a new map | (as sockets) | (as sockets) | $(ms "$APPLY_GSLBD") | $(ms "$APPLY_GDNSD") | | | |"
[ -n "$XA_COST" ] && echo "| XDP answer program, per query alone (BPF_PROG_TEST_RUN, median) | $XA_COST | | | | | | |"
echo "| of $CHECK ECS subnets: as gslb-map lookup says / as gslbd does | $((CHECK - BAD_XA)) as gslbd | $((CHECK - BAD_XDP)) as gslbd | $((CHECK - BAD_MAP)) | $((CHECK - BAD_PAIR)) | | | |"
echo
echo "| map from $(fmt "$SAMPLES") samples | |"
echo "| --- | --- |"
echo "| samples (gslb-gen) | $(fmt "$(($(wc -l < "$DIR/samples.csv") - 1))") rows in $GEN_WALL s |"
echo "| build (gslb-map build) | $BUILD_WALL s wall, $BUILD_CPU s CPU, $(fmt $((BUILD_RSS / 1024))) MiB peak RSS |"
echo "| map file | $(fmt "$MAP_BYTES") bytes: $(fmt "$(info entries4)") IPv4 + $(fmt "$(info entries6)") IPv6 entries, $(fmt $(($(info nodes4) + $(info nodes6)))) nodes, $(info lists) lists |"
echo "| gdnsd nets file | $(fmt "$NETS_LINES") lines, $(fmt "$NETS_BYTES") bytes ($NETS_WALL s) |"
echo
echo "# gslbd: $BUILDTYPE; $(nproc) CPUs: ${CPU_MODEL:-?}; $(uname -r); servers and their NAPI on CPU $SERVER_CPU, dnsperf and its NAPI on CPU $CLIENT_CPU; $(dnsperf -h 2>&1 | sed -n 's/^Version /dnsperf /p'); $(date -u +%Y-%m-%d)"
echo "# command: $CMDLINE"
