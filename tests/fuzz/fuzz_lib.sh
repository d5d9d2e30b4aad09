# shellcheck shell=bash
# The variables it sets are the calling script's; fuzz_flags is the caller's to set.
# shellcheck disable=SC2034,SC2154
# SPDX-License-Identifier: GPL-2.0-only
# What the libFuzzer scripts share: their arguments, the build (ASan and
# UBSan, errors fatal), seeds written from hex, the run and its report.
#
#   . tests/fuzz/fuzz_lib.sh
#   fuzz_begin NAME "$@"     [SECONDS] [BUILDDIR]: sets secs, out, src, bin,
#                            seeds, corpus, log, me; exits 2 on bad arguments
#   fuzz_build SRC... -- LIBS...   with the flags in the array fuzz_flags
#   seed NAME HEX...         a seed file from hex pieces (joined)
#   fuzz_run ARGS...         run for secs with libFuzzer ARGS; report; exit
#                            with the fuzzer's status on a crash

fuzz_begin() { # NAME [SECONDS] [BUILDDIR]
	local name=$1
	me=$(basename "$0" .sh)
	secs=${2:-10}
	out=${3:-/tmp}
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	bin=$out/$name
	seeds=$out/${name}_seeds
	corpus=$out/${name}_corpus
	log=$out/$name.log
	case $secs in '' | *[!0-9]*)
		echo "usage: $0 [SECONDS] [BUILDDIR]" >&2
		exit 2
		;;
	esac
	mkdir -p "$out" "$seeds" "$corpus"
}

fuzz_build() { # SRC... -- LIBS...
	local srcs=() libs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		srcs+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	libs=("$@")
	if ! "${CC:-clang}" "${fuzz_flags[@]}" -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all "${srcs[@]}" "${libs[@]}" -o "$bin"; then
		echo "$me: build failed; libFuzzer comes with libclang-rt-14-dev" >&2
		exit 2
	fi
}

seed() { # NAME HEX... (the pieces are joined)
	local name=$1 hex esc='' i
	shift
	hex=$(printf '%s' "$@")
	for ((i = 0; i < ${#hex}; i += 2)); do
		esc+="\\x${hex:i:2}"
	done
	printf '%b' "$esc" >"$seeds/$name"
}

fuzz_run() { # libFuzzer ARGS...
	local rc execs cov
	set +e
	"$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$bin-" "$@" "$corpus" "$seeds" >"$log" 2>&1
	rc=$?
	set -e
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
	if [ "$rc" -ne 0 ]; then
		tail -n 60 "$log" >&2
		echo "$me: FAILED (exit $rc) after ${execs:-?} executions; log: $log" >&2
		ls "$bin"-* 2>/dev/null >&2 || true
		exit "$rc"
	fi
	echo "$me: ${execs:-?} executions in ${secs}s, no crash; ${cov:-cov: ?} (edges, features)"
	echo "$me: corpus $(find "$corpus" -type f | wc -l) inputs in $corpus"
}
