#!/usr/bin/env bash
# How fast a starting BGP speaker gets its route into the router's table:
# lbd against ExaBGP and GoBGP (the anchors), each announcing one VIP to the
# same BIRD 2 router in the same run, on the same machine.
#
#   tests/bench/bench_bgp.sh [BUILD_DIR] [RUNS]     (as root; default 5 runs)
#
# Two namespaces joined by a veth: the router (BIRD, AS 65000,
# 198.51.100.1) and the LB (198.51.100.2, AS 65001), with the timers of the
# anchor configs (hold 9 s, keepalive 3 s, BIRD connect retry 2 s, graceful
# restart). For each run: start the speaker, then poll BIRD every few ms
# for the Established session and for 192.0.2.10/32 in its table; the
# figures are milliseconds from the speaker's start, medians of RUNS.
# ExaBGP announces from a static route in its config, GoBGP from
# `gobgp global rib add` as soon as its API answers, lbd from a VIP
# (health checks "none": announced at once).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
RUNS=${2:-5}
P=bb$$
D=$(mktemp -d /tmp/portico-bench-bgp.XXXXXX)
[ "$(id -u)" -eq 0 ] || { echo "bench_bgp: needs root" >&2; exit 1; }
for t in bird birdc exabgp gobgpd gobgp; do
  command -v "$t" >/dev/null || { echo "bench_bgp: $t missing (deploy/install-deps)" >&2; exit 1; }
done

cleanup() {
  for n in rtr lb; do
    for p in $(ip netns pids "$P-$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$P-$n" 2>/dev/null || true
  done
  rm -rf "$D"
}
trap cleanup EXIT
rtr() { ip netns exec "$P-rtr" "$@"; }
lbx() { ip netns exec "$P-lb" "$@"; }
ms() { date +%s%3N; }

for n in rtr lb; do
  ip netns add "$P-$n"
  ip netns exec "$P-$n" ip link set lo up
  ip netns exec "$P-$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
ip link add rtr0 netns "$P-rtr" type veth peer name lb0 netns "$P-lb"
rtr ip addr add 198.51.100.1/24 dev rtr0
lbx ip addr add 198.51.100.2/24 dev lb0
lbx ip -6 addr add 2001:db8:ff::2/64 dev lb0 nodad
rtr ip link set rtr0 up
lbx ip link set lb0 up
lbx sysctl -qw net.ipv4.ip_forward=1

cat > "$D/bird.conf" <<EOF
log "$D/bird.log" all;
router id 198.51.100.1;
protocol device { }
protocol bgp lb {
  local 198.51.100.1 as 65000;
  neighbor 198.51.100.2 as 65001;
  hold time 9;
  keepalive time 3;
  connect retry time 2;
  error wait time 1, 10;
  graceful restart on;
  ipv4 { import all; export none; };
}
EOF
rtr bird -c "$D/bird.conf" -s "$D/bird.ctl" -P "$D/bird.pid"
for _ in $(seq 100); do [ -S "$D/bird.ctl" ] && break; sleep 0.05; done

cat > "$D/lbd.conf" <<EOF
role = "l4lb"; host = "bench"; interface = "lb0"; xdp_mode = "generic"; pin_dir = "";
admin_socket = "$D/lbd.sock";
vips = ( { address = "192.0.2.10"; port = 80; health = { kind = "none"; };
           reals = ( { address = "198.51.100.1"; } ); } );
bgp = { asn = 65001; listen_port = 0;
        neighbors = ( { address = "198.51.100.1"; asn = 65000; hold_time = 9; } ); };
EOF
cat > "$D/exabgp.conf" <<EOF
neighbor 198.51.100.1 {
  router-id 198.51.100.2;
  local-address 198.51.100.2;
  local-as 65001;
  peer-as 65000;
  hold-time 9;
  family { ipv4 unicast; }
  capability { graceful-restart 30; }
  static { route 192.0.2.10/32 next-hop 198.51.100.2; }
}
EOF
cat > "$D/gobgpd.toml" <<EOF
[global.config]
  as = 65001
  router-id = "198.51.100.2"
  port = -1
  local-address-list = ["198.51.100.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.51.100.1"
    peer-as = 65000
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [neighbors.transport.config]
    local-address = "198.51.100.2"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
EOF

established() { rtr birdc -s "$D/bird.ctl" show protocols lb | grep -q Established; }
routed() { rtr birdc -s "$D/bird.ctl" show route for 192.0.2.10/32 | grep -q unicast; }
idle() { ! established && ! routed; }

start_speaker() { # start_speaker NAME: in the background, pid in $D/pid
  case "$1" in
  lbd) lbx "$BUILD/ctl/lbd" -c "$D/lbd.conf" >> "$D/lbd.log" 2>&1 & echo $! > "$D/pid" ;;
  exabgp) env exabgp.daemon.daemonize=false exabgp.daemon.user=root exabgp.log.destination="$D/exabgp.log" \
      ip netns exec "$P-lb" exabgp "$D/exabgp.conf" >> "$D/exabgp.out" 2>&1 & echo $! > "$D/pid" ;;
  gobgp)
    lbx gobgpd -f "$D/gobgpd.toml" -t toml --api-hosts 127.0.0.1:50551 >> "$D/gobgpd.log" 2>&1 &
    echo $! > "$D/pid"
    for _ in $(seq 500); do
      lbx gobgp -u 127.0.0.1 -p 50551 global rib add -a ipv4 192.0.2.10/32 nexthop 198.51.100.2 \
        >/dev/null 2>&1 && break
      sleep 0.01
    done ;;
  esac
}
stop_speaker() {
  local p
  p=$(cat "$D/pid")
  # A Cease, so that BIRD drops the route now rather than keep it stale
  # for a graceful restart (ExaBGP and GoBGP send one on SIGTERM).
  [ "$1" = lbd ] && lbx "$BUILD/ctl/lbctl" -s "$D/lbd.sock" shutdown >/dev/null 2>&1
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$p" 2>/dev/null || true
  # ip netns exec may have left the speaker as a child: sweep the namespace.
  for q in $(ip netns pids "$P-lb"); do kill -KILL "$q" 2>/dev/null || true; done
  for _ in $(seq 400); do idle && break; sleep 0.05; done
  # Whatever happened, the next run starts from a router that knows nothing.
  rtr birdc -s "$D/bird.ctl" disable lb >/dev/null
  rtr birdc -s "$D/bird.ctl" enable lb >/dev/null
  idle || { echo "bench_bgp: the router still has the route after $1 stopped" >&2; exit 1; }
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)); else print "-"}'; }

printf '%-8s %18s %18s   %s\n' speaker "established (ms)" "route in BIRD (ms)" "runs (est/route)"
for sp in lbd exabgp gobgp; do
  ests=() routes=()
  for _ in $(seq "$RUNS"); do
    t0=$(ms)
    start_speaker "$sp"
    te="" tr=""
    for _ in $(seq 6000); do # 30 s at most
      [ -z "$te" ] && established && te=$(($(ms) - t0))
      [ -z "$tr" ] && routed && tr=$(($(ms) - t0))
      [ -n "$te" ] && [ -n "$tr" ] && break
      sleep 0.003
    done
    ests+=("${te:-timeout}")
    routes+=("${tr:-timeout}")
    stop_speaker "$sp"
    sleep 0.5
  done
  printf '%-8s %18s %18s   %s\n' "$sp" "$(printf '%s\n' "${ests[@]}" | grep -v timeout | median)" \
    "$(printf '%s\n' "${routes[@]}" | grep -v timeout | median)" \
    "$(paste -d/ <(printf '%s\n' "${ests[@]}") <(printf '%s\n' "${routes[@]}") | paste -sd' ')"
done
