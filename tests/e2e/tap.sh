# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
# TAP-style results for the end-to-end scripts: ok/bad count and print a
# line, check runs a command and says which; the caller ends with
#   echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check NAME CMD...
  local name=$1; shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}
