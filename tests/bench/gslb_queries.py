#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""gslb_queries - the DNS side of bench_gslb.sh, standard library only.

  subnets SAMPLES N SEED      N distinct client subnets (IPv4 /24, IPv6 /56)
                              drawn from a gslb-gen samples CSV, one a line
  wire SUBNETS OUT            dnsperf -B input: per subnet a query for
                              www.example.test A with EDNS (1232) and an ECS
                              option for that subnet, RFC 1035 4.2.2 framing
  ask PORT SUBNETS            ask SERVER:PORT once per subnet; prints
                              "SUBNET A-ADDRESS SCOPE" ("-" when none)
  apply PORT SUBNET OLD NEW SRC DST TIMEOUT
                              check SUBNET gets OLD, rename SRC to DST, ask
                              every 10 ms until the answer is NEW; prints
                              the milliseconds from the rename, or
                              "timeout"; exit 1 if the first answer is not OLD

SERVER is $GSLB_SERVER (an IPv4 address), 127.0.0.1 if unset.

dnsperf's text input has no per-query EDNS options (-E sets one option for
every query), so the queries are built here as wire messages; dnsperf -B
sends them as they are, only rewriting the ID.
"""
import ipaddress
import os
import random
import socket
import struct
import sys
import time

QNAME = "www.example.test"
# IPv6 spaces gdnsd cannot hold nets in (gdnsd-plugin-geoip(8)): v4-like
# addresses it maps to IPv4, so neither server is asked about them.
V4LIKE = [ipaddress.ip_network(n) for n in
          ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "2001::/32", "2002::/16")]


def subnet_of(text):
    a = ipaddress.ip_address(text)
    n = ipaddress.ip_network("%s/%d" % (a, 24 if a.version == 4 else 56), strict=False)
    if a.version == 6 and any(n.subnet_of(v) for v in V4LIKE):
        return None
    return n


def cmd_subnets(path, n, seed):
    seen = set()
    with open(path) as f:
        next(f, None)  # header
        for line in f:
            client = line.split(",", 1)[0].strip()
            try:
                s = subnet_of(client)
            except ValueError:
                continue  # gslb-gen's rows made bad on purpose
            if s is not None:
                seen.add(s)
    pool = sorted(seen, key=lambda s: (s.version, s))
    random.Random(int(seed)).shuffle(pool)
    for s in pool[:int(n)]:
        print(s)


def query(subnet, qid=0):
    """www.example.test A, RD clear, EDNS 1232 with ECS subnet (scope 0)."""
    net = ipaddress.ip_network(subnet, strict=False)
    q = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1)
    q += b"".join(bytes([len(l)]) + l.encode() for l in QNAME.split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    addr = net.network_address.packed[:(net.prefixlen + 7) // 8]  # bits past the prefix are 0
    ecs = struct.pack("!HBB", 1 if net.version == 4 else 2, net.prefixlen, 0) + addr
    opt = struct.pack("!HH", 8, len(ecs)) + ecs
    q += b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opt)) + opt
    return q


def skip_name(m, i):
    while True:
        n = m[i]
        if n & 0xC0 == 0xC0:
            return i + 2
        if n == 0:
            return i + 1
        i += n + 1


def answer(m):
    """(first A address or "-", ECS scope or "-", rcode) of a response."""
    _, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", m[:12])
    i = 12
    for _ in range(qd):
        i = skip_name(m, i) + 4
    a, scope = "-", "-"
    for k in range(an + ns + ar):
        i = skip_name(m, i)
        typ, _, _, rdlen = struct.unpack("!HHIH", m[i:i + 10])
        i += 10
        rd = m[i:i + rdlen]
        if k < an and typ == 1 and a == "-":
            a = socket.inet_ntoa(rd)
        if typ == 41:
            j = 0
            while j + 4 <= len(rd):
                code, olen = struct.unpack("!HH", rd[j:j + 4])
                if code == 8 and olen >= 4:
                    scope = str(rd[j + 7])
                j += 4 + olen
        i += rdlen
    return a, scope, flags & 0xF


class Asker:
    def __init__(self, port):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.connect((os.environ.get("GSLB_SERVER", "127.0.0.1"), int(port)))
        self.qid = 0

    def ask(self, subnet, timeout=1.0, tries=2):
        for _ in range(tries):
            self.qid = (self.qid + 1) & 0xFFFF
            self.s.send(query(subnet, self.qid))
            end = time.monotonic() + timeout
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.s.settimeout(left)
                try:
                    m = self.s.recv(4096)
                except socket.timeout:
                    break
                if len(m) >= 12 and struct.unpack("!H", m[:2])[0] == self.qid:
                    return answer(m)
        return "-", "-", -1


def cmd_wire(subnets, out):
    with open(subnets) as f, open(out, "wb") as o:
        for line in f:
            if line.strip():
                q = query(line.strip())
                o.write(struct.pack("!H", len(q)) + q)


def cmd_ask(port, subnets):
    a = Asker(port)
    with open(subnets) as f:
        for line in f:
            if line.strip():
                addr, scope, _ = a.ask(line.strip())
                print(line.strip(), addr, scope)


def cmd_apply(port, subnet, old, new, src, dst, timeout):
    a = Asker(port)
    got = a.ask(subnet)[0]
    if got != old:
        print("before the change %s got %s, not %s" % (subnet, got, old), file=sys.stderr)
        sys.exit(1)
    t0 = time.monotonic()
    os.rename(src, dst)
    end = t0 + float(timeout)
    while time.monotonic() < end:
        t = time.monotonic()
        if a.ask(subnet, timeout=0.05, tries=1)[0] == new:
            print("%.0f" % ((time.monotonic() - t0) * 1000))
            return
        time.sleep(max(0.0, 0.01 - (time.monotonic() - t)))
    print("timeout")


def main():
    cmds = {"subnets": (cmd_subnets, 3), "wire": (cmd_wire, 2), "ask": (cmd_ask, 2),
            "apply": (cmd_apply, 7)}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or len(sys.argv) != cmds[sys.argv[1]][1] + 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]][0](*sys.argv[2:])


if __name__ == "__main__":
    main()
