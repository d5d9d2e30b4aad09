#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""gslb_answers - what the GSLB e2e scripts ask of kdig's answers.

  parse                  kdig "+noall +answer +opt" output on stdin: one line
                         "SUBNET TYPE ADDRESS SCOPE" per A/AAAA answer
  compare EXPECTED GOT POP=A=AAAA...
                         GOT (parse's lines) against EXPECTED (`gslb-map
                         lookup` lines: "PREFIX pops=P1,P2 scope=N ...");
                         every subnet the map covers must get its first
                         PoP's address of the type, and the map's scope.
                         Mismatches go to stderr; prints "BAD HITS"
                         (subnets not in the map are skipped, not hits)
"""
import ipaddress
import re
import sys


def parse():
    subnet = scope = None
    for line in sys.stdin:
        m = re.search(r"CLIENT-SUBNET: (\S+)/(\d+)/(\d+)", line)
        if m:
            subnet, scope = "%s/%s" % (m.group(1), m.group(2)), m.group(3)
            continue
        f = line.split()
        if len(f) >= 5 and f[3] in ("A", "AAAA") and subnet:
            print(subnet, f[3], f[4], scope)
            subnet = None


def net(text):
    return str(ipaddress.ip_network(text, strict=False))


def compare(expected, got, vips):
    exp = {}
    for line in open(expected):
        exp[net(line.split()[0])] = dict(kv.split("=", 1) for kv in line.split()[1:])
    vip = {}
    for kv in vips:
        p, a, aaaa = kv.split("=")
        vip[p] = {"A": a, "AAAA": aaaa}
    bad = hits = 0
    for line in open(got):
        subnet, t, ans, scope = line.split()
        e = exp.get(net(subnet))
        if e is None:
            bad += 1
            print("no expectation for", subnet, file=sys.stderr)
            continue
        if e["pops"] == "-":
            continue  # not in the map: country or default, checked apart
        hits += 1
        want = vip[e["pops"].split(",")[0]][t]
        if ans != want or scope != e["scope"]:
            bad += 1
            print("%s %s: got %s scope %s, map says %s scope %s"
                  % (subnet, t, ans, scope, want, e["scope"]), file=sys.stderr)
    print(bad, hits)


if __name__ == "__main__":
    if sys.argv[1:2] == ["parse"]:
        parse()
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) >= 4:
        compare(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
