#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Fuzz gslbd's query path (gslb/dns.c with libknot's parser) with libFuzzer,
# ASan and UBSan.
#
#   tests/fuzz/run_fuzz_dns.sh [SECONDS] [BUILDDIR]     (defaults: 10, /tmp)
#
# Builds BUILDDIR/fuzz_dns, writes seed queries (made with kdig's wire
# format by hand here, as hex: plain, EDNS, ECS v4/v6, odd classes and
# types), runs for SECONDS and prints executions and coverage. The corpus
# grows in BUILDDIR/fuzz_dns_corpus; a crash is saved as BUILDDIR/fuzz_dns-crash-*.
set -euo pipefail

# shellcheck source=tests/fuzz/fuzz_lib.sh
. "$(dirname "$0")/fuzz_lib.sh"
fuzz_begin fuzz_dns "$@"
fuzz_flags=(-g -O1 -Wall -Wextra -Werror -Wno-missing-field-initializers -D_GNU_SOURCE
	-I"$src/gslb" -I"$src/gslb/tools" -I"$src/lib" -I"$src/xdp")
fuzz_build "$src/tests/fuzz/fuzz_dns.c" "$src/gslb/dns.c" "$src/gslb/conf.c" "$src/gslb/map.c" \
	"$src/gslb/tools/geo.c" "$src/lib/cfgfile.c" "$src/lib/addr.c" -- -lknot -lconfig -lGeoIP -lz

www=03777777076578616d706c650474657374 # www.example.test
hdr=beef01000001000000000000           # id, RD, one question
hdr_edns=beef01000001000000000001      # ... and one additional (OPT)
opt=0000290200000000                   # OPT: payload 512, version 0, DO 0
# First byte: bit 0 TCP, bit 1 IPv6 source.
seed a_udp 00 "$hdr" "$www" 00 0001 0001
seed aaaa_tcp6 03 "$hdr" "$www" 00 001c 0001
seed soa 00 "$hdr" 076578616d706c650474657374 00 0006 0001
seed ns_edns 00 "$hdr_edns" 076578616d706c650474657374 00 0002 0001 00 "$opt" 0000
seed ecs4 00 "$hdr_edns" "$www" 00 0001 0001 00 "$opt" 000b 0008 0007 0001 18 00 cb0071
seed ecs6 02 "$hdr_edns" "$www" 00 001c 0001 00 "$opt" 000c 0008 0008 0002 30 00 20010db80001
seed ecs0 00 "$hdr_edns" "$www" 00 0001 0001 00 "$opt" 0008 0008 0004 0001 00 00
seed nx 00 "$hdr" 026e78076578616d706c650474657374 00 0001 0001
seed refused 00 "$hdr" 03777777076578616d706c6503636f6d 00 0001 0001
seed any_ch 00 "$hdr" "$www" 00 00ff 0003
seed badvers 00 "$hdr_edns" "$www" 00 0001 0001 00 0000290200000100 0000
seed sub 01 "$hdr" 0361706903737562076578616d706c650474657374 00 0001 0001

fuzz_run -max_len=2048
