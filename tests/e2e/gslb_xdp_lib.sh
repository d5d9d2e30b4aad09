# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# What the two XDP end-to-end scripts of gslbd (test_gslb_xdp.sh, AF_XDP;
# test_gslb_xdp_answer.sh, the answer program) share: gslbd's namespace
# and the client's, joined by a veth pair, both removed on any exit; the
# binaries; the PoPs (gslb_pops.sh); a config writer and gslbd's start and
# stop; metric and kdig helpers.
#
# Set before sourcing: REPO, E2E, BUILD; NAME (namespace prefix) and TAG
# (netns_begin's); IF and CIF (gslbd's and the client's veth ends), S4,
# S6, C4, C6 (their addresses). Sets NS, NC, D, the binaries, SMAC.
# shellcheck disable=SC2034 # the variables are the sourcing script's
GSLBD=$BUILD/gslb/gslbd
GMAP=$BUILD/gslb/mapbuild/gslb-map
GGEN=$BUILD/gslb/tools/gslb-gen
LBCTL=$BUILD/ctl/lbctl
PY=/usr/bin/python3
FR=$E2E/xdp_frames.py
export ASAN_OPTIONS=detect_leaks=0
# shellcheck source=tests/e2e/tap.sh
. "$E2E/tap.sh"
# shellcheck source=tests/e2e/netns_lib.sh
. "$E2E/netns_lib.sh"
# shellcheck disable=SC2153 # NAME and TAG: set by the sourcing script
netns_begin "$NAME$$" "$TAG"
NC="${NAME}c$$"
gslb_xdp_cleanup() {
  local p
  for p in $(ip netns pids "$NC" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NC" 2>/dev/null
  netns_cleanup
}
trap gslb_xdp_cleanup EXIT
ip netns add "$NC" || exit 1
ncx() { ip netns exec "$NC" "$@"; }

for b in "$GSLBD" "$GMAP" "$GGEN" "$LBCTL"; do
  [ -x "$b" ] || { echo "not ok - no binary at $b"; echo "0 passed, 1 failed"; exit 1; }
done
command -v kdig >/dev/null || { echo "not ok - kdig (knot-dnsutils) missing"; exit 1; }

ncx ip link set lo up
ip -n "$NS" link add "$IF" type veth peer name "$CIF" netns "$NC" || exit 1
ip -n "$NS" addr add "$S4/24" dev "$IF"
ip -n "$NS" addr add "$S6/64" dev "$IF" nodad
ip -n "$NC" addr add "$C4/24" dev "$CIF"
ip -n "$NC" addr add "$C6/64" dev "$CIF" nodad
ip -n "$NS" link set "$IF" up
ip -n "$NC" link set "$CIF" up
# Partial checksums and a native-XDP peer do not mix.
ncx ethtool -K "$CIF" tx off > /dev/null
SMAC=$(nsx cat "/sys/class/net/$IF/address")
export LBCTL_GSLB_SOCKET=$D/gslbd.sock

# fra iad nrt gru syd: $D/pops.csv, V4, V6, ANY4
# shellcheck source=tests/e2e/gslb_pops.sh
. "$E2E/gslb_pops.sh"

# write_conf FILE XDP_BLOCK [RATE_LIMIT] [LISTEN] [WORKERS]
NO_RRL="rate_limit = { rate = 0; };"
write_conf() {
  {
    cat <<EOC
listen = [${4:-"\"$S4:53\", \"[$S6]:53\""}];
workers = ${5:-2};
admin_socket = "$D/gslbd.sock";
map = "$D/live/map.bin";
$2
${3:-$NO_RRL}
EOC
    gslb_conf_common "$S4" "$S6"
  } > "$1"
}

GPID=
start_gslbd() { # LOG: start with $D/gslbd.conf, wait for the admin socket
  rm -f "$D/gslbd.sock"
  # Not through nsx: a function in the background is a subshell, and
  # its pid is not gslbd's. ip netns exec execs gslbd.
  ip netns exec "$NS" "$GSLBD" -c "$D/gslbd.conf" > "$1" 2>&1 &
  GPID=$!
  for _ in $(seq 150); do
    [ -S "$D/gslbd.sock" ] && return 0
    kill -0 "$GPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
give_up() { # WHY LOG: the rest needs a running gslbd
  bad "$1"
  sed 's/^/# /' "$2" | tail -20
  echo "$passed passed, $failed failed"
  exit 1
}
stop_gslbd() { # SIGNAL: stop and wait; the exit status in RC
  kill "-$1" "$GPID" 2>/dev/null
  RC=0
  { wait "$GPID"; } 2>/dev/null || RC=$?
  GPID=
}
metric() { # NAME{LABELS}: its value, 0 when absent
  "$LBCTL" gslb metrics | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
Q_UDP='gslbd_queries_total{transport="udp"}'
Q_TCP='gslbd_queries_total{transport="tcp"}'
xdp_attached() { ip -n "$NS" link show "$IF" | grep -q "prog/xdp"; }
kd() { ncx kdig +time=1 +retry=1 "$@"; }
