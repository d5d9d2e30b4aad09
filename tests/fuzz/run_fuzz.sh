#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Fuzz the BGP message codec (ctl/bgp/msg.c) with libFuzzer, ASan and UBSan.
#
#   tests/fuzz/run_fuzz.sh [SECONDS] [BUILDDIR]     (defaults: 10, /tmp)
#
# Builds BUILDDIR/fuzz_bgp_msg, writes a seed corpus of valid messages (made
# with the encoder, kept here as hex), runs for SECONDS and prints the number
# of executions and the coverage. Inputs that grow coverage are kept in
# BUILDDIR/fuzz_bgp_msg_corpus, so later runs start where this one stopped.
# Exits non-zero on any crash, sanitizer report or broken invariant; the
# input that did it is saved as BUILDDIR/fuzz_bgp_msg-crash-*.
#
# Needs clang 14 with libFuzzer: Debian packages clang-14 and
# libclang-rt-14-dev (libclang_rt.fuzzer-x86_64.a). With llvm-14 installed
# (llvm-profdata, llvm-cov) it also reports msg.c's line and branch coverage.
set -euo pipefail

# shellcheck source=tests/fuzz/fuzz_lib.sh
. "$(dirname "$0")/fuzz_lib.sh"
fuzz_begin fuzz_bgp_msg "$@"
srcs=("$src/tests/fuzz/fuzz_bgp_msg.c" "$src/ctl/bgp/msg.c")
fuzz_flags=(-g -O1 -Wall -Wextra -Werror -I"$src/ctl/bgp")
fuzz_build "${srcs[@]}"

# Seeds: one message per file, and all of them back to back as one stream.
m=ffffffffffffffffffffffffffffffff # RFC 4271 §4.1 marker
seed open "${m}003f0104fde9005a0a000001220220010400010001010400020001020041040000fde9400a00780001010000020100"
seed open_as4_gr "${m}003301045ba00003c00002fe1602140104000200014104fa56ea0140068fff00020180"
seed open_plain "${m}001d0104fc0000000000000100"
seed open_rfc9072 "${m}003501045ba0005ac00002feffff00150200124104fa56ea01400a812c0002018000018080"
seed keepalive "${m}001304"
seed update4 "${m}0037020000001b4001010040020602010000fde9400304c0000201c00804ffff000020c633640a"
seed update4_ibgp "${m}004102000100002040010100400200400304c000020140050400000064c00808ffff0000fde9006420c633640a18c00002"
seed update4_as_trans "${m}0037020000001b4001010040020402015ba0400304c0000201c011060201fa56ea0120c633640a"
seed update6 "${m}0061020000004a800e260002011020010db8000000000000000000000001008020010db8000000000000000000000010800f0a0002013020010db800014001010040020602010000fde9c00804ffff0000"
seed eor4 "${m}00170200000000"
seed eor6 "${m}001d0200000006800f03000201"
seed route_refresh "${m}00170500020001"
seed notification "${m}001a0306020462796521"
# Attributes a router may add (MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR,
# extended and large communities) and an OPEN with capabilities lbd ignores
# (extended messages, ADD-PATH, enhanced route refresh, LLGR, FQDN).
seed update4_rich "$m" 006c 02 0000 0051 40010100 40020602010000fde9 400304c0000201 \
	80040400000000 40050400000064 400600 c007080000fde90a000001 c00804ffff0000 \
	c010080002fde900000064 c0200c0000fde90000000100000002 18c63364
seed open_bird "$m" 0051 01 04 fde9 00f0 c0000201 34 0232 010400010001 0200 4600 0600 \
	4006007800010180 41040000fde9 450400010101 470700010180000e10 490705626972643100
(cd "$seeds" && cat open keepalive update4 eor4 update6 eor6 route_refresh notification >stream)

# Tokens the mutator may splice in: marker, attribute and capability heads.
cat >"$out/fuzz_bgp_msg.dict" <<'EOF'
marker="\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
origin="\x40\x01\x01\x00"
as_path4="\x40\x02\x06\x02\x01"
next_hop="\x40\x03\x04"
communities="\xc0\x08\x04"
mp_reach6="\x80\x0e\x26\x00\x02\x01\x10"
mp_unreach6="\x80\x0f\x03\x00\x02\x01"
mp_unreach4="\x80\x0f\x03\x00\x01\x01"
cap_mp6="\x01\x04\x00\x02\x00\x01"
cap_as4="\x41\x04"
cap_gr="\x40\x06"
aggregator4="\xc0\x07\x08"
aggregator2="\xc0\x07\x06"
as4_path="\xc0\x11"
ext_params="\xff\xff"
EOF

fuzz_run -max_len=8192 -dict="$out/fuzz_bgp_msg.dict"

# Source coverage of msg.c over the corpus, when llvm-14 is there.
profdata=$(command -v llvm-profdata-14 || command -v llvm-profdata || true)
llvmcov=$(command -v llvm-cov-14 || command -v llvm-cov || true)
if [ -n "$profdata" ] && [ -n "$llvmcov" ]; then
	"${CC:-clang}" "${fuzz_flags[@]}" -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
		"${srcs[@]}" -o "$bin-cov"
	rm -f "$out"/fuzz_bgp_msg-*.profraw
	LLVM_PROFILE_FILE="$out/fuzz_bgp_msg-%p.profraw" "$bin-cov" -runs=0 "$corpus" "$seeds" \
		>/dev/null 2>&1
	"$profdata" merge -sparse "$out"/fuzz_bgp_msg-*.profraw -o "$out/fuzz_bgp_msg.profdata"
	"$llvmcov" report "$bin-cov" -instr-profile="$out/fuzz_bgp_msg.profdata" \
		"$src/ctl/bgp/msg.c" | awk '/msg.c|^Filename/ {
		printf "run_fuzz: %s\n", $0 }'
	rm -f "$out"/fuzz_bgp_msg-*.profraw
fi
exit 0
