# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# Helpers shared by tests/e2e/test_heal.sh and tests/bench/bench_heal.sh to
# drive a popbox PoP: run in a node, call lbctl/birdc, read what the router
# and the LBs think, run fresh requests and large downloads in the
# background. Sourcing it sets an EXIT trap that takes the PoP down.
# Expects REPO, POPBOX, POPBOX_PREFIX, POPBOX_BUILD, S (the
# popbox state directory), VIP4 and VIP6 to be set.

# On exit: stop the request loop, take the PoP down, remove its state.
loop_pid=
popbox_cleanup() {
  [ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null
  "$POPBOX" down >/dev/null 2>&1
  rm -rf "$S"
}
trap popbox_cleanup EXIT

node() { local n=$1; shift; ip netns exec "$POPBOX_PREFIX-$n" "$@"; }
ctl() { local n=$1; shift; LBCTL_SOCKET=$S/run/$n.sock "$POPBOX_BUILD/ctl/lbctl" "$@"; }
birdc() { node router birdc -s "$S/run/bird.ctl" "$@"; }
cc() { node client curl --cacert "$S/tls/ca.pem" -s -m 30 "$@"; }
daemon() { "$POPBOX" daemon "$@"; }
ms() { date +%s%3N; }
wait_until() { # wait_until SECONDS CMD...: poll every 50 ms
  local end=$(($(ms) + $1 * 1000)); shift
  while [ "$(ms)" -lt "$end" ]; do "$@" && return 0; sleep 0.05; done
  return 1
}
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# What the router does with the VIPs.
nexthops4() { node router ip route show "$VIP4/32" | grep -oE 'via [0-9.]+' | sort | paste -sd' '; }
nexthops6() { node router ip -6 route show "$VIP6/128" | grep -oE 'via [0-9a-f:]+' | sort | paste -sd' '; }
both_lbs() { [ "$(nexthops4)" = "via 10.0.1.2 via 10.0.2.2" ] && [ "$(nexthops6)" = "via fd00:1::2 via fd00:2::2" ]; }
only_lb2() { [ "$(nexthops4)" = "via 10.0.2.2" ] && [ "$(nexthops6)" = "via fd00:2::2" ]; }
only_lb1() { [ "$(nexthops4)" = "via 10.0.1.2" ] && [ "$(nexthops6)" = "via fd00:1::2" ]; }
withdrawn() { [ -z "$(nexthops4)" ] && [ -z "$(nexthops6)" ]; }
# BIRD's own table: how many paths for the VIP, from which protocol.
bird_paths() { birdc show route for "$1" all 2>/dev/null | grep -cE '^\s*unicast|^[0-9a-f.:]+/[0-9]+ +unicast'; }
bird_has() { birdc show route for "$1" protocol "$2" 2>/dev/null | grep -q unicast; }
bird_gshut() { birdc show route for "$1" protocol "$2" all 2>/dev/null | grep -q '(65535,0)'; }

# Reals of one L7 host as each LB sees them: "up up up up".
states_of() { # states_of LB HOSTNUM (3 = l7a, 4 = l7b)
  ctl "$1" --json real list | json "' '.join(r['health']['state'] for r in d if r['address'] in ('10.0.$2.2', 'fd00:$2::2'))"
}
all_down() { [ "$(states_of lb1 "$1")" = "down down down down" ] && [ "$(states_of lb2 "$1")" = "down down down down" ]; }
all_up() { [ "$(states_of lb1 "$1")" = "up up up up" ] && [ "$(states_of lb2 "$1")" = "up up up up" ]; }

# Fresh requests (a new connection each) through both VIPs, in the background.
loop_start() {
  rm -f "$S/loop.json" "$S/loop.pid"
  node client sh -c 'echo $$ > "$0"; exec "$@"' "$S/loop.pid" /usr/bin/python3 \
    "$REPO/tests/e2e/req_loop.py" --ca "$S/tls/ca.pem" --rate 25 \
    --url "https://$VIP4/" --url "http://[$VIP6]/" --url "https://[$VIP6]/" --url "http://$VIP4/" \
    --duration 120 --out "$S/loop.json" &
  wait_until 5 test -s "$S/loop.pid"
  loop_pid=$(cat "$S/loop.pid")
  sleep 0.3
}
loop_stop() { # prints "N requests, M failed"
  kill "$loop_pid" 2>/dev/null
  wait_until 10 test -s "$S/loop.json"
  loop_pid=
  json '"%d requests, %d failed%s" % (d["requests"], d["failed"], (" (" + "; ".join("%.2fs %s" % (f["t"], f["error"][:60]) for f in d["failures"][:3]) + ")") if d["failed"] else "")' < "$S/loop.json"
}
loop_failed() { json 'd["failed"]' < "$S/loop.json"; }

big=/dev/shm/popbox-$POPBOX_PREFIX-files/files/64M
want_sha() { sha256sum < "$big" | cut -c1-64; }
# A 64 MiB download, slowed to last ~4 s, in the background.
download_start() { # download_start URL
  cc --limit-rate 16M -D "$S/dl.headers" -o "$S/dl.body" "$1" &
  dl_pid=$!
  wait_until 5 test -s "$S/dl.headers"
}
download_ok() { wait "$dl_pid" && [ "$(sha256sum < "$S/dl.body" | cut -c1-64)" = "$(want_sha)" ]; }
tx_of() { ctl "$1" --json stats | json 'd["global"]["tx"]["packets"]'; }

