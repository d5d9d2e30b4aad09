# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# A private network namespace for an end-to-end script: its loopback up,
# a scratch directory, both removed on any exit (every process left in
# the namespace is killed first). Traffic stays on that loopback.
#
#   . tests/e2e/netns_lib.sh
#   netns_begin NAME TAG    # exits 77 without root; sets NS and D
#   nsx CMD...              # run in the namespace
#   wait_port PORT          # until 127.0.0.1:PORT accepts there (10 s)

netns_cleanup() {
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$D"
}

netns_begin() { # NAME TAG
  if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: network namespaces need root"
    exit 77
  fi
  NS=$1
  D=$(mktemp -d "/tmp/portico-$2.XXXXXX")
  trap netns_cleanup EXIT
  trap 'exit 130' INT TERM
  ip netns add "$NS" || exit 1
  nsx ip link set lo up
}

nsx() { ip netns exec "$NS" "$@"; }

wait_port() { # PORT
  local i
  for i in $(seq 100); do
    nsx timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
