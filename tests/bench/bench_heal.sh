#!/usr/bin/env bash
# How fast the demo PoP heals, and what each disruption costs clients.
#
#   tests/bench/bench_heal.sh [BUILD_DIR] [RUNS]     (as root; default 5)
#
# Brings up its own popbox (BIRD router, two LBs, two L7 hosts; health
# checks every 500 ms, 150 ms while a change is pending, 1 s timeout, fall
# and rise 2) and measures:
#   - false positives: health transitions of healthy reals while h2load
#     saturates the machine for 20 s (goal 0);
#   - a proxy killed (SIGKILL): ms until both LBs have its host out of
#     every ring (median, max of RUNS), and the fresh requests that failed
#     meanwhile (25 new connections a second over both VIPs);
#   - every proxy killed: ms until the router has no route to the VIPs;
#   - failed fresh requests during: an LB drained (GRACEFUL_SHUTDOWN then
#     withdrawal), lbd restarted on an LB, an LB removed (lbctl shutdown),
#     an L7 host drained (weight 0). The goal is 0 for each.
# Figures go to docs/benchmarks.md with the command line.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
export POPBOX_BUILD=${1:-$REPO/build}
RUNS=${2:-5}
export POPBOX_PREFIX=bh$$
export POPBOX_STATE=$(mktemp -d /tmp/portico-bench-heal.XXXXXX)
export POPBOX_NO_BUILD=1
export POPBOX_MAX_FILE_MB=1
export POPBOX_DRAIN_DELAY_MS=2000
export S=$POPBOX_STATE
POPBOX=$REPO/deploy/popbox
VIP4=192.0.2.10
VIP6=2001:db8::10
[ "$(id -u)" -eq 0 ] || { echo "bench_heal: needs root" >&2; exit 1; }

# shellcheck source=tests/e2e/popbox_lib.sh
. "$REPO/tests/e2e/popbox_lib.sh"

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)); else print "-"}'; }
maxof() { sort -n | tail -1; }
kill_proxy() { kill -KILL "$(cat "$S/pid/$1.l7proxy")" 2>/dev/null; rm -f "$S/pid/$1.l7proxy"; }
downs() { cat "$S"/log/lb1.lbd.log "$S"/log/lb2.lbd.log | grep -c -- '-> down'; }
# Poll faster than the e2e helpers: these are the measured intervals.
wait_fast() { local end=$(($(ms) + $1 * 1000)); shift
  while [ "$(ms)" -lt "$end" ]; do "$@" && return 0; sleep 0.01; done; return 1; }

"$POPBOX" up --quiet --no-traffic || { echo "bench_heal: popbox up failed" >&2; exit 1; }
wait_until 10 all_up 3 && wait_until 10 all_up 4 || { echo "bench_heal: reals not up" >&2; exit 1; }

# 1. False positives under load.
d0=$(downs)
node client timeout 40 h2load -c 32 -m 10 -D 20 "https://$VIP4/" > "$S/h2load.out" 2>&1
d1=$(downs)
rps=$(grep -oE 'finished in [0-9.]+s, [0-9.]+ req/s' "$S/h2load.out" | grep -oE '[0-9.]+ req/s')
fp=$((d1 - d0))

# 2. One proxy killed.
det=() fail=() total=()
for _ in $(seq "$RUNS"); do
  loop_start
  t=$(ms)
  kill_proxy l7a
  wait_fast 10 all_down 3
  det+=($(($(ms) - t)))
  sleep 1
  loop_stop >/dev/null
  fail+=("$(loop_failed)")
  total+=("$(json 'd["requests"]' < "$S/loop.json")")
  daemon start l7a l7proxy
  wait_until 10 all_up 3
done

# 3. Every proxy killed: the VIPs leave the router.
wd=()
for _ in $(seq "$RUNS"); do
  t=$(ms)
  kill_proxy l7a
  kill_proxy l7b
  wait_fast 10 withdrawn
  wd+=($(($(ms) - t)))
  daemon start l7a l7proxy
  daemon start l7b l7proxy
  wait_until 10 both_lbs
  wait_until 10 all_up 3
  wait_until 10 all_up 4
done

# 4. Planned disruptions.
declare -A cost
loop_start
ctl lb1 bgp drain >/dev/null
wait_until 10 bash -c "$(declare -f node birdc bird_has); ! bird_has $VIP4/32 lb1"
sleep 1
loop_stop >/dev/null
cost[drain]="$(loop_failed)/$(json 'd["requests"]' < "$S/loop.json")"
ctl lb1 bgp undrain >/dev/null
wait_until 10 both_lbs

loop_start
daemon restart lb1 lbd
wait_until 10 bash -c '[ "$(LBCTL_SOCKET=$1/run/lb1.sock "$2"/ctl/lbctl --json bgp neighbors 2>/dev/null | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"state\"])" 2>/dev/null)" = Established ]' _ "$S" "$POPBOX_BUILD"
sleep 1
loop_stop >/dev/null
cost[restart]="$(loop_failed)/$(json 'd["requests"]' < "$S/loop.json")"

loop_start
ctl lb1 shutdown >/dev/null
wait_until 10 only_lb2
sleep 1
loop_stop >/dev/null
cost[remove]="$(loop_failed)/$(json 'd["requests"]' < "$S/loop.json")"
daemon start lb1 lbd
wait_until 10 both_lbs

loop_start
for lb in lb1 lb2; do
  for v in "$VIP4:443" "$VIP4:80"; do ctl "$lb" real set-weight "$v" 10.0.3.2 0 >/dev/null; done
  for v in "[$VIP6]:443" "[$VIP6]:80"; do ctl "$lb" real set-weight "$v" fd00:3::2 0 >/dev/null; done
done
sleep 2
loop_stop >/dev/null
cost[l7drain]="$(loop_failed)/$(json 'd["requests"]' < "$S/loop.json")"
# Once drained, no new connection may reach it.
loop_start
sleep 2
loop_stop >/dev/null
l7a_after="$(json 'd["served_by"].get("popbox/l7a", 0)' < "$S/loop.json")/$(json 'd["requests"]' < "$S/loop.json")"

sum() { local t=0; for x in "$@"; do t=$((t + x)); done; echo "$t"; }
echo "heal benchmark, $RUNS runs each ($(nproc) CPUs; health every 500 ms, 150 ms pending, timeout 1 s, fall/rise 2)"
printf '  %-66s %s\n' \
  "false positives while h2load ran 20 s (${rps:-?})" "$fp down transitions (goal 0)" \
  "proxy killed -> out of both LBs' rings, median / max" "$(printf '%s\n' "${det[@]}" | median) / $(printf '%s\n' "${det[@]}" | maxof) ms  (runs: ${det[*]})" \
  "  fresh requests failed meanwhile (25/s, over 1 s + detection)" "$(sum "${fail[@]}") of $(sum "${total[@]}")  (per run: ${fail[*]})" \
  "last proxy killed -> VIPs withdrawn at the router, median / max" "$(printf '%s\n' "${wd[@]}" | median) / $(printf '%s\n' "${wd[@]}" | maxof) ms  (runs: ${wd[*]})" \
  "LB drained (GRACEFUL_SHUTDOWN, withdrawal): failed / requests" "${cost[drain]}" \
  "lbd restarted on an LB: failed / requests" "${cost[restart]}" \
  "LB removed (lbctl shutdown): failed / requests" "${cost[remove]}" \
  "L7 host drained (weight 0): failed / requests" "${cost[l7drain]}" \
  "  then new requests that reached the drained host" "$l7a_after"
