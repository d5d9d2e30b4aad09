#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Bad and heavy DNS traffic for gslbd's end-to-end test.

  dns_attack.py garbage HOST PORT       every truncation of a valid query, bit
                                        flips, random bytes, responses; prints
                                        "sent N answered M formerr F other O"
  dns_attack.py tcp-slow HOST PORT      TCP: half a length prefix, a length
                                        with no body, a query cut mid-body,
                                        then a good query on a new connection
  dns_attack.py flood HOST PORT N [SRC] N queries from one source (bound to SRC)
                                        as fast as possible; prints "sent N
                                        answered M truncated T"

Queries are built here from RFC 1035 section 4.1 (header, question) and RFC
6891 (OPT), so the test does not depend on the server's own code.
"""
import random
import socket
import struct
import sys
import time


def qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(name="www.example.test", qtype=1, qid=0xBEEF, edns=True, ecs=None):
    hdr = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    q = hdr + qname(name) + struct.pack("!HH", qtype, 1)
    if edns:
        opts = b""
        if ecs:
            fam, src, addr = ecs
            data = struct.pack("!HBB", fam, src, 0) + addr[: (src + 7) // 8]
            opts = struct.pack("!HH", 8, len(data)) + data
        q += b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opts)) + opts
    return q


def rcode(resp):
    return resp[3] & 0xF if len(resp) >= 4 else None


def garbage(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.02)
    rnd = random.Random(5)
    good = query(ecs=(1, 24, bytes([203, 0, 113, 0])))
    msgs = [good[:i] for i in range(len(good))]
    for _ in range(3000):
        m = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            m[rnd.randrange(len(m))] = rnd.randrange(256)
        msgs.append(bytes(m))
    for _ in range(500):
        msgs.append(bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 600))))
    resp = bytearray(good)
    resp[2] |= 0x80  # a response: must never be answered
    msgs += [bytes(resp)] * 50
    sent = answered = formerr = other = answered_resp = 0
    for m in msgs:
        s.sendto(m, (host, port))
        sent += 1
        try:
            r, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        answered += 1
        if m == bytes(resp):
            answered_resp += 1
        if rcode(r) == 1:
            formerr += 1
        else:
            other += 1
    print("sent %d answered %d formerr %d other %d answered_responses %d"
          % (sent, answered, formerr, other, answered_resp))


def tcp_slow(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    conns = []
    for payload in (b"\x00", struct.pack("!H", 0xFFFF), struct.pack("!H", 60) + query()[:20]):
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.connect((host, port))
        c.sendall(payload)
        conns.append(c)
    # The half-sent ones do not hold the server: a new query is answered.
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(3)
    c.connect((host, port))
    q = query(qid=0x1234)
    # Two pipelined queries in one write, answered in order.
    c.sendall(struct.pack("!H", len(q)) + q + struct.pack("!H", len(q)) + q)
    got = b""
    deadline = time.time() + 3
    while len(got) < 4 and time.time() < deadline:
        got += c.recv(65535)
    n = struct.unpack("!H", got[:2])[0]
    while len(got) < 2 + n + 2 and time.time() < deadline:
        got += c.recv(65535)
    n2 = struct.unpack("!H", got[2 + n:4 + n])[0]
    while len(got) < 4 + n + n2 and time.time() < deadline:
        got += c.recv(65535)
    ok = (got[2:4] == b"\x12\x34" and got[4 + n:6 + n] == b"\x12\x34"
          and rcode(got[2:]) == 0)
    print("pipelined %s" % ("ok" if ok else "BAD %r" % got[:40]))
    for c in conns:
        c.close()


def flood(host, port, n, src=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if src:
        s.bind((src, 0))
    s.setblocking(False)
    q = query(edns=False)
    answered = truncated = 0
    for i in range(n):
        s.sendto(q, (host, port))
        if i % 50 == 49:
            time.sleep(0.001)
        try:
            while True:
                r = s.recv(65535)
                answered += 1
                truncated += bool(r[2] & 0x02)
        except BlockingIOError:
            pass
    deadline = time.time() + 0.5
    while time.time() < deadline:
        try:
            r = s.recv(65535)
            answered += 1
            truncated += bool(r[2] & 0x02)
        except BlockingIOError:
            time.sleep(0.01)
    print("sent %d answered %d truncated %d" % (n, answered, truncated))


if __name__ == "__main__":
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "garbage":
        garbage(host, port)
    elif cmd == "tcp-slow":
        tcp_slow(host, port)
    elif cmd == "flood":
        flood(host, port, int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        sys.exit("unknown command " + cmd)
