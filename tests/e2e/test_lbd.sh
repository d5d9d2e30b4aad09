#!/usr/bin/env bash
# End-to-end: lbd's own defects, on the real daemon (role l4lb, the XDP
# balancer attached to a veth) in a private network namespace.
#
#   tests/e2e/test_lbd.sh [BUILD_DIR]     (default: build-asan)
#
# - The admin socket is created 0660 from the first moment (umask set
#   before bind, no chmod after it: checked in a syscall trace).
# - A client trickling a byte every 1.5 s neither holds the loop nor other
#   clients: they are answered at once, it is cut at the request deadline,
#   and the periodic upkeep runs by elapsed time while admin calls come
#   every half second.
# - A reload with more VIPs than the balancer holds is refused before
#   anything changes.
# Exits 77 without root; cleans up on any exit.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build-asan}
NS=lbd$$
D=$(mktemp -d /tmp/portico-lbd.XXXXXX)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
[ "$(id -u)" -eq 0 ] || { echo "skipped: network namespaces and XDP need root"; exit 77; }
cleanup() {
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
passed=0 failed=0
check() { local n=$1; shift; if "$@"; then echo "ok - $n"; passed=$((passed + 1)); else echo "not ok - $n"; failed=$((failed + 1)); fi; }

ip netns add "$NS"
nsx ip link set lo up
nsx ip link add lbt0 type veth peer name lbt1
nsx ip link set lbt0 up
nsx ip link set lbt1 up
nsx ip addr add 10.9.0.1/24 dev lbt0
nsx sysctl -qw net.ipv4.ip_forward=1
vips() { # vips N: a config with N VIPs
  echo "role = \"l4lb\"; host = \"t\"; interface = \"lbt0\"; xdp_mode = \"generic\"; pin_dir = \"\";"
  echo "admin_socket = \"$D/lbd.sock\";"
  echo "vips = ("
  for ((i = 1; i <= $1; i++)); do
    echo "$([ $i -gt 1 ] && echo ,){ address = \"192.0.2.$i\"; port = 80; reals = ( { address = \"10.9.0.2\"; } ); }"
  done
  echo ");"
}
vips 2 > "$D/lbd.conf"
ctl() { nsx "$BUILD/ctl/lbctl" -s "$D/lbd.sock" "$@"; }
# The VIPs and reals as configured, without the health that changes alone.
vips_of() {
  ctl --json vip list | /usr/bin/python3 -c 'import json,sys
print([(v["address"], v["port"], v["proto"], v["id"], [(r["address"], r["weight"], r["id"]) for r in v["reals"]]) for v in json.load(sys.stdin)])'
}
# Under umask 000 and a syscall trace: lbd must set its umask before bind
# and never chmod the socket.
(umask 000; nsx strace -f -e trace=umask,bind,chmod,fchmod,fchmodat -o "$D/strace" \
  "$BUILD/ctl/lbd" -c "$D/lbd.conf" > "$D/lbd.log" 2>&1) &
for _ in $(seq 100); do [ -S "$D/lbd.sock" ] && break; sleep 0.1; done
mode=$(stat -c %a "$D/lbd.sock" 2>/dev/null)
order=$(grep -E "umask\(|bind\(.*lbd.sock|chmod.*lbd.sock" "$D/strace" | sed -E 's/^[0-9]+ +//; s/\(.*//' | paste -sd' ')
check "admin socket 0660 from the start (mode $mode; syscalls: $order)" \
  test "$mode" = 660 -a "$order" = "umask bind umask"

# A slow client: one byte every 1.5 s.
/usr/bin/python3 - "$D/lbd.sock" > "$D/slow.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
t0 = time.time()
try:
    for b in b"GET /v1/status HTTP/1.1\r\n\r\n":
        s.send(bytes([b])); time.sleep(1.5)
    print("never cut")
except OSError:
    print("cut after %.1fs" % (time.time() - t0))
PY
slow=$!
sleep 0.5
worst=0 maxtick=0 ticked=0
for i in $(seq 24); do # 12 s of admin calls every 0.5 s
  t0=$(date +%s%N)
  tick=$(ctl --json status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["last_tick_ms_ago"])')
  t=$((($(date +%s%N) - t0) / 1000000))
  [ "$t" -gt "$worst" ] && worst=$t
  [ "${tick:--1}" -ge 0 ] && ticked=1
  [ "${tick:-0}" -gt "$maxtick" ] && maxtick=$tick
  sleep 0.5
done
wait "$slow"
check "other admin calls answered at once while a client trickles (slowest ${worst} ms)" test "$worst" -lt 1000
check "the trickling client is cut at the request deadline ($(cat "$D/slow.out"))" grep -q "cut after [23]\." "$D/slow.out"
check "the periodic upkeep runs by elapsed time under admin polling (ran: $ticked, at most ${maxtick} ms apart + polling)" \
  test "$ticked" = 1 -a "$maxtick" -le 5600

# A reload with 65 VIPs: refused whole, nothing touched.
before=$(vips_of)
vips 65 > "$D/lbd.conf"
out=$(ctl reload 2>&1)
check "reload with 65 VIPs refused ($out)" bash -c '[[ "$1" == *"65 vips: the balancer holds at most 64"* && "$1" == *"unchanged"* ]]' _ "$out"
check "and the running VIPs are unchanged" test "$before" = "$(vips_of)"
vips 3 > "$D/lbd.conf"
out=$(ctl reload 2>&1)
n=$(ctl --json vip list | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "a valid reload still works afterwards ($out: $n VIPs)" test "$n" = 3
check "no sanitizer report" bash -c '! grep -qE "ERROR: AddressSanitizer|runtime error:" "$1"' _ "$D/lbd.log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
