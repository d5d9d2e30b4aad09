#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Frames and datagrams for gslbd's AF_XDP end-to-end test.

  xdp_frames.py bad IFACE DSTMAC SRC4 DST4 SRC6 DST6 PORT
        hand-made Ethernet frames on IFACE (AF_PACKET, no scapy needed):
        UDP lengths under 8 and over the packet, IPv4 total lengths and
        header lengths that lie, IPv6 payload lengths that lie, truncated
        DNS headers, random payloads, DNS responses, source port 0,
        fragments, VLAN tags, martian sources; prints one line per kind,
        "KIND sent N answered M", answers counted by sniffing IFACE; with
        XDP_KINDS=K1,K2 in the environment, only those kinds (debugging)
  xdp_frames.py noanswer HOST PORT N
        N DNS responses (QR=1) from one UDP socket, paced so that the
        receive ring keeps up; they must not be answered; prints "sent N
        answered M"
  xdp_frames.py ask HOST PORT N [SRC]
        N queries for www.example.test A, one at a time (0.5 s each, it
        stops after 5 unanswered in a row); prints "asked N answered M"
        (answered: NOERROR with an answer)
  xdp_frames.py ping HOST
        one ICMP or ICMPv6 echo over a raw socket; exit 0 on the reply
  xdp_frames.py udp-echo ADDR PORT SECONDS
        echo UDP datagrams on ADDR:PORT for SECONDS (prints "ready" first)
  xdp_frames.py udp-probe HOST PORT
        send a datagram, wait for its echo; exit 0 if it came back

Headers are built here from RFC 791, 768, 8200 and 1035, so the test does
not depend on the code under test.
"""
import os
import random
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100


def qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid=0xBEEF, name="www.example.test", qtype=1, flags=0x0100):
    return struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0) + qname(name) + struct.pack("!HH", qtype, 1)


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ipv4(src, dst, payload, proto=17, tot_len=None, ihl=5, frag=0, version=4, options=b""):
    if tot_len is None:
        tot_len = 20 + len(options) + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, tot_len & 0xFFFF, 0x1234, frag, 64,
                      proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + options
    hdr = hdr[:10] + struct.pack("!H", csum(hdr[:20])) + hdr[12:]
    return hdr + payload


def ipv6(src, dst, payload, nh=17, plen=None):
    if plen is None:
        plen = len(payload)
    return struct.pack("!IHBB16s16s", 6 << 28, plen & 0xFFFF, nh, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def udp(sport, dport, data, length=None, src6=None, dst6=None):
    if length is None:
        length = 8 + len(data)
    h = struct.pack("!HHHH", sport, dport, length & 0xFFFF, 0)
    if src6:  # IPv6: a real checksum (over the true length)
        ph = (socket.inet_pton(socket.AF_INET6, src6) + socket.inet_pton(socket.AF_INET6, dst6)
              + struct.pack("!IxxxB", 8 + len(data), 17))
        c = csum(ph + h + data) or 0xFFFF
        h = h[:6] + struct.pack("!H", c)
    return h + data


class Wire:
    """Send frames on an interface and count the DNS answers coming back."""

    def __init__(self, iface, dst, sport_base=40000):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.bind((iface, 0))
        self.s.setblocking(False)
        self.src = self.s.getsockname()[4][:6]
        self.dst = mac(dst)
        self.sport = sport_base

    def eth(self, ethertype, payload, vlans=()):
        tags = b"".join(struct.pack("!HH", ETH_P_8021Q, v) for v in vlans)
        return self.dst + self.src + tags + struct.pack("!H", ethertype) + payload

    def send(self, frame):
        try:
            self.s.send(frame)
            return True
        except OSError:
            return False

    def answers(self, wait=0.3):
        """DNS answers from the server since the last call (UDP from port
        53): their destination ports."""
        got = []
        deadline = time.time() + wait
        while True:
            left = deadline - time.time()
            if left <= 0:
                break
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                break
            while True:
                try:
                    f, addr = self.s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == socket.PACKET_OUTGOING:
                    continue
                dport = dns_answer_port(f)
                if dport is not None:
                    got.append(dport)
        return got


def dns_answer_port(f):
    off = 12
    et = struct.unpack("!H", f[off:off + 2])[0]
    while et == ETH_P_8021Q and len(f) >= off + 6:
        off += 4
        et = struct.unpack("!H", f[off:off + 2])[0]
    off += 2
    if et == ETH_P_IP and len(f) >= off + 28:
        ihl = (f[off] & 0xF) * 4
        if f[off + 9] != 17 or len(f) < off + ihl + 8:
            return None
        sport, dport = struct.unpack("!HH", f[off + ihl:off + ihl + 4])
    elif et == ETH_P_IPV6 and len(f) >= off + 48:
        if f[off + 6] != 17:
            return None
        sport, dport = struct.unpack("!HH", f[off + 40:off + 44])
    else:
        return None
    return dport if sport == 53 else None


def bad(iface, dstmac, src4, dst4, src6, dst6, port):
    rnd = random.Random(11)
    w = Wire(iface, dstmac)
    w.answers(0.05)
    good = query()
    resp = bytearray(good)
    resp[2] |= 0x80
    resp = bytes(resp)
    # Each kind's queries come from its own run of source ports, so that
    # an answer, whenever it comes, is counted for the kind that asked.
    kinds = []
    ports = [20000]

    def sp():
        ports[0] += 1
        return ports[0]

    def add(name, frames):
        lo = kinds[-1][3] if kinds else 20000
        kinds.append((name, frames, lo, ports[0]))

    def v4(payload, **kw):
        return w.eth(ETH_P_IP, ipv4(src4, dst4, payload, **kw))

    def v6(payload, **kw):
        return w.eth(ETH_P_IPV6, ipv6(src6, dst6, payload, **kw))

    # A valid query each way first: the frames are well made.
    add("valid-v4", [v4(udp(sp(), port, good))])
    add("valid-v6", [v6(udp(sp(), port, good, src6=src6, dst6=dst6))])
    # UDP length under the header's own 8 bytes, the rest of the frame right.
    add("udp-len<8-v4", [v4(udp(sp(), port, good, length=n)) for n in range(8)] * 4)
    add("udp-len<8-v6", [v6(udp(sp(), port, good, length=n)) for n in range(8)] * 4)
    # UDP length over the packet.
    add("udp-len>pkt-v4", [v4(udp(sp(), port, good, length=8 + len(good) + d))
                                     for d in (1, 2, 100, 1000, 0xFFFF - 8 - len(good))] * 4)
    add("udp-len>pkt-v6", [v6(udp(sp(), port, good, length=8 + len(good) + d))
                                     for d in (1, 2, 100, 1000, 0xFFFF - 8 - len(good))] * 4)
    # UDP length shorter than the datagram: a DNS message cut short.
    add("udp-len-short", [v4(udp(sp(), port, good, length=8 + n)) for n in range(len(good))])
    # IPv4 total length: over the frame, under the headers, short of the data.
    tl = [0, 1, 19, 20, 21, 27, 28, 29, 40, 20 + 8 + len(good) + 1, 1500, 0xFFFF]
    add("ip4-totlen-lies", [v4(udp(sp(), port, good), tot_len=t) for t in tl] * 4)
    # IPv4 header length: under 5 words, and over what the frame holds.
    f = []
    for ihl in range(0, 5):
        f.append(v4(udp(sp(), port, good), ihl=ihl))
    f.append(v4(udp(sp(), port, good), ihl=15))
    f.append(v4(b"\0" * 40 + udp(sp(), port, good), ihl=15))
    f.append(v4(udp(sp(), port, good)[:4], ihl=15))
    # ihl 0: the "UDP header" is the IP header itself, its destination
    # port the total length: 53 bytes sends it to port 53.
    f.append(v4(b"\0" * 33, ihl=0, tot_len=port))
    add("ip4-ihl-lies", f * 4)
    add("ip4-version-lies", [w.eth(ETH_P_IP, ipv4(src4, dst4, udp(sp(), port, good), version=v))
                                       for v in (0, 5, 6, 15)])
    # IPv6 payload length: under the UDP header, over the frame.
    add("ip6-plen-lies", [v6(udp(sp(), port, good, src6=src6, dst6=dst6), plen=p)
                                    for p in (0, 1, 7, 8, 9, 19, 8 + len(good) + 1, 1500, 0xFFFF)] * 4)
    # Frames cut in the IP or UDP header.
    full4 = v4(udp(sp(), port, good))
    full6 = v6(udp(sp(), port, good, src6=src6, dst6=dst6))
    add("cut-frames", [full4[:n] for n in range(14, 14 + 28)]
                  + [full6[:n] for n in range(14, 14 + 48)])
    # Truncated DNS headers (the UDP and IP lengths agree): 0..11 bytes.
    add("dns-hdr-cut-v4", [v4(udp(sp(), port, good[:n])) for n in range(12)] * 3)
    add("dns-hdr-cut-v6", [v6(udp(sp(), port, good[:n], src6=src6, dst6=dst6))
                                     for n in range(12)] * 3)
    # Random payloads.
    add("random-v4", [v4(udp(sp(), port, bytes(rnd.randrange(256) for _ in range(rnd.randint(12, 600)))))
                                for _ in range(150)])
    add("random-v6", [v6(udp(sp(), port, d, src6=src6, dst6=dst6)) for d in
                                (bytes(rnd.randrange(256) for _ in range(rnd.randint(12, 600)))
                                 for _ in range(100))])
    # Mutated queries: a few bytes of a good one changed.
    mut = []
    for _ in range(200):
        m = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            m[rnd.randrange(len(m))] = rnd.randrange(256)
        mut.append(v4(udp(sp(), port, bytes(m))))
    add("mutated", mut)
    # DNS responses: never answered.
    add("responses", [v4(udp(sp(), port, resp)) for _ in range(50)]
                  + [v6(udp(sp(), port, resp, src6=src6, dst6=dst6)) for _ in range(50)])
    # Source port 0: never answered.
    add("sport-0", [v4(udp(0, port, good)), v6(udp(0, port, good, src6=src6, dst6=dst6))] * 5)
    # Fragments (the first one carries the UDP header) and an IPv6
    # fragment header.
    frag6 = struct.pack("!BBHI", 17, 0, 1, 0x42)  # offset 0, M=1
    add("fragments", [v4(udp(sp(), port, good), frag=0x2000),  # MF
                                v4(udp(sp(), port, good), frag=0x0010),  # offset 128
                                v6(frag6 + udp(sp(), port, good), nh=44)] * 3)
    # VLAN tags: one (the program takes it) and two (it does not).
    add("vlan", [w.eth(ETH_P_IP, ipv4(src4, dst4, udp(sp(), port, good)), vlans=(5,)),
                           w.eth(ETH_P_IP, ipv4(src4, dst4, udp(sp(), port, good)), vlans=(5, 6))] * 3)
    # Martian sources the kernel would drop: broadcast, multicast, zero,
    # loopback, the server's own address.
    f = [w.eth(ETH_P_IP, ipv4(s, dst4, udp(sp(), port, good)))
         for s in ("255.255.255.255", "224.0.0.1", "0.0.0.0", "127.0.0.1", dst4)]
    f += [w.eth(ETH_P_IPV6, ipv6(s, dst6, udp(sp(), port, good, src6=s, dst6=dst6)))
          for s in ("ff02::1", "::", "::1", dst6)]
    add("martian-src", f)
    # Not addressed to this host at all: another IP, another MAC.
    add("other-dst-ip", [w.eth(ETH_P_IP, ipv4(src4, "10.201.0.99", udp(sp(), port, good)))])
    # Our addresses, but to the broadcast and a multicast MAC: an answer
    # would carry that group address as its source MAC.
    group = []
    for mac in (b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x01", b"\x33\x33\x00\x00\x00\x01"):
        group.append(mac + w.src + struct.pack("!H", ETH_P_IP) + ipv4(src4, dst4, udp(sp(), port, good)))
        group.append(mac + w.src + struct.pack("!H", ETH_P_IPV6)
                     + ipv6(src6, dst6, udp(sp(), port, good, src6=src6, dst6=dst6)))
    add("group-mac", group)
    only = os.environ.get("XDP_KINDS")  # a comma-separated subset, for debugging
    if only:
        kinds = [k for k in kinds if k[0] in only.split(",")]
    got = []
    sent = {}
    for name, frames, _, _ in kinds:
        sent[name] = 0
        for fr in frames:
            sent[name] += w.send(fr)
            if sent[name] % 32 == 0:
                time.sleep(0.001)
        got += w.answers(0.05)
    got += w.answers(1.0)
    for name, _, lo, hi in kinds:
        # Source port 0 is its own: answers to port 0 are counted there.
        n = sum(1 for p in got if (lo < p <= hi) or (p == 0 and name == "sport-0"))
        print("%s sent %d answered %d" % (name, sent[name], n))
    print("total sent %d answered %d" % (sum(sent.values()), len(got)))


def drain(s):
    """Count (and discard) the datagrams waiting on non-blocking socket s."""
    n = 0
    try:
        while True:
            s.recv(65535)
            n += 1
    except BlockingIOError:
        return n


def noanswer(host, port, n):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setblocking(False)
    resp = bytearray(query())
    resp[2] |= 0x80
    answered = 0
    for i in range(n):
        struct.pack_into("!H", resp, 0, i & 0xFFFF)
        s.sendto(bytes(resp), (host, port))
        if i % 64 == 63:
            time.sleep(0.002)
        answered += drain(s)
    time.sleep(0.3)
    answered += drain(s)
    print("sent %d answered %d" % (n, answered))


def ask(host, port, n, src=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if src:
        s.bind((src, 0))
    s.settimeout(0.5)
    answered = misses = 0
    for i in range(n):
        if misses >= 5:  # five in a row: the rest would go the same way
            break
        qid = 0x1000 + i
        s.sendto(query(qid=qid), (host, port))
        try:
            while True:
                r = s.recv(65535)
                if struct.unpack("!H", r[:2])[0] == qid:
                    break
        except socket.timeout:
            misses += 1
            continue
        misses = 0
        if (r[3] & 0xF) == 0 and struct.unpack("!H", r[6:8])[0] > 0:
            answered += 1
    print("asked %d answered %d" % (n, answered))


def ping(host):
    if ":" in host:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        typ, reply = 128, 129
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        typ, reply = 8, 0
    ident = os.getpid() & 0xFFFF
    msg = struct.pack("!BBHHH", typ, 0, 0, ident, 1) + b"portico"
    if typ == 8:
        msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
    s.sendto(msg, (host, 0))  # the kernel fills in the ICMPv6 checksum
    s.settimeout(0.2)
    deadline = time.time() + 2
    while time.time() < deadline:
        try:
            r = s.recv(65535)
        except socket.timeout:
            continue
        if typ == 8:
            r = r[(r[0] & 0xF) * 4:]
        if r[0] == reply and struct.unpack("!H", r[4:6])[0] == ident:
            return 0
    return 1


def udp_echo(addr, port, seconds):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(0.2)
    print("ready", flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            d, a = s.recvfrom(65535)
        except socket.timeout:
            continue
        s.sendto(d, a)


def udp_probe(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    for _ in range(4):
        s.sendto(b"not dns, another port", (host, port))
        try:
            if s.recv(65535) == b"not dns, another port":
                return 0
        except socket.timeout:
            pass
    return 1


if __name__ == "__main__":
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "bad":
        bad(a[0], a[1], a[2], a[3], a[4], a[5], int(a[6]))
    elif cmd == "noanswer":
        noanswer(a[0], int(a[1]), int(a[2]))
    elif cmd == "ask":
        ask(a[0], int(a[1]), int(a[2]), a[3] if len(a) > 3 else None)
    elif cmd == "ping":
        sys.exit(ping(a[0]))
    elif cmd == "udp-echo":
        udp_echo(a[0], int(a[1]), float(a[2]))
    elif cmd == "udp-probe":
        sys.exit(udp_probe(a[0], int(a[1])))
    else:
        sys.exit("unknown command " + cmd)
