#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""A BGP peer that misbehaves on purpose, to test lbd's speaker.

    bgp_peer.py --listen 10.0.1.3 [--port 179] --asn 65099 --garbage marker

Waits for lbd to connect (lbd is the active side), answers its OPEN with
a valid one (RFC 4271 4.2, with the MP capabilities lbd asked for) and a
KEEPALIVE, waits for lbd's KEEPALIVE (the session is Established), then
sends one broken message and prints, as JSON, the NOTIFICATION lbd sends
back (code, subcode) and whether lbd closed the connection.

Garbage kinds, each with the NOTIFICATION RFC 4271 6 names:
  marker   a header whose marker is not all ones      -> 1/1
  length   a header length of 5000                     -> 1/2
  type     message type 9                              -> 1/3
  aspath   UPDATE with an AS_PATH segment of type 7: RFC 7606 7.2 makes
           this treat-as-withdraw; no NOTIFICATION, the session stays
           ("kept": true after 2 s of KEEPALIVEs)
  open     a second OPEN once Established              -> 5/3 (RFC 6608)
"""
import argparse
import json
import socket
import struct
import sys

MARKER = b"\xff" * 16


def msg(mtype, body):
    return MARKER + struct.pack("!HB", 19 + len(body), mtype) + body


def read_msg(s):
    hdr = b""
    while len(hdr) < 19:
        chunk = s.recv(19 - len(hdr))
        if not chunk:
            return None, None
        hdr += chunk
    length, mtype = struct.unpack("!HB", hdr[16:19])
    body = b""
    while len(body) < length - 19:
        chunk = s.recv(length - 19 - len(body))
        if not chunk:
            return None, None
        body += chunk
    return mtype, body


def open_body(asn, bgp_id):
    # Capabilities (RFC 5492): MP IPv4 and IPv6 unicast (RFC 4760), 4-octet AS (RFC 6793).
    caps = b""
    for afi in (1, 2):
        caps += struct.pack("!BBHBB", 1, 4, afi, 0, 1)
    caps += struct.pack("!BBI", 65, 4, asn)
    params = struct.pack("!BB", 2, len(caps)) + caps
    my_as = asn if asn < 65536 else 23456
    return struct.pack("!BHH4sB", 4, my_as, 9, socket.inet_aton(bgp_id), len(params)) + params


def garbage(kind):
    if kind == "marker":
        return b"\x00" * 16 + struct.pack("!HB", 19, 4)
    if kind == "length":
        return MARKER + struct.pack("!HB", 5000, 2)
    if kind == "type":
        return MARKER + struct.pack("!HB", 19, 9)
    if kind == "aspath":
        # ORIGIN IGP, AS_PATH with a segment of type 7 (only 1-4 exist), NEXT_HOP, one /32.
        attrs = bytes([0x40, 1, 1, 0])
        attrs += bytes([0x40, 2, 6, 7, 1]) + struct.pack("!I", 65099)
        attrs += bytes([0x40, 3, 4]) + socket.inet_aton("10.0.1.3")
        body = struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + bytes([32]) + socket.inet_aton("198.51.100.1")
        return msg(2, body)
    if kind == "open":
        return msg(1, open_body(65099, "10.0.1.3"))
    raise SystemExit("unknown garbage kind " + kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=179)
    ap.add_argument("--asn", type=int, default=65099)
    ap.add_argument("--garbage", required=True)
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.listen, a.port))
    ls.listen(1)
    ls.settimeout(a.timeout)
    s, _ = ls.accept()
    s.settimeout(a.timeout)
    result = {"garbage": a.garbage}
    mtype, body = read_msg(s)
    if mtype != 1:
        result["error"] = "expected OPEN, got %r" % mtype
        print(json.dumps(result))
        return 1
    s.sendall(msg(1, open_body(a.asn, a.listen)) + msg(4, b""))
    while True:  # until lbd's KEEPALIVE: Established
        mtype, body = read_msg(s)
        if mtype is None or mtype == 3:
            result["error"] = "session did not come up (%r)" % (body,)
            print(json.dumps(result))
            return 1
        if mtype == 4:
            break
    s.sendall(garbage(a.garbage))
    if a.garbage == "aspath":
        s.settimeout(2)
    # lbd may send End-of-RIB UPDATEs or KEEPALIVEs first: read to the NOTIFICATION.
    while True:
        try:
            mtype, body = read_msg(s)
        except socket.timeout:
            result["kept"] = True
            print(json.dumps(result))
            return 0
        if mtype is None:
            result["closed_without_notification"] = True
            break
        if mtype == 3:
            result["code"], result["subcode"] = body[0], body[1]
            result["data_len"] = len(body) - 2
            break
    # Then lbd must close the connection.
    try:
        s.settimeout(3)
        result["closed"] = s.recv(1) == b""
    except socket.timeout:
        result["closed"] = False
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
