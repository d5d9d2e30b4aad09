#!/usr/bin/python3
"""Reconnect again and again, offering each TLS session once, as browsers do.

Each connection sends one GET, reads X-Served-By (which L7 host answered)
and keeps the newest session it got; the next connection offers that one
and never an older one. Prints one JSON line:

  {"connections": N, "resumed": R, "cross_host": C, "by_host": {...},
   "resumed_from": {"l7a->l7b": n, ...}, "errors": E, "versions": {...}}

resumed_from counts resumptions by (host that issued the ticket -> host
that resumed it). Used by tests/e2e/test_tls.sh and the TLS benchmark.
"""
import argparse
import json
import socket
import ssl
import sys
import time


def one(ctx, host, port, sni, session, path, timeout):
    raw = socket.create_connection((host, port), timeout=timeout)
    s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        served = ""
        for line in head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "x-served-by":
                served = v.strip().split("/")[-1]
        status = head.split(" ", 2)[1] if " " in head else "?"
        # TLS 1.3 tickets arrive after the handshake: take the session now.
        return s.session_reused, s.session, served, status, s.version()
    finally:
        try:
            s.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--sni", default="vip.popbox.test")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=0, help="run at least this long")
    ap.add_argument("--path", default="/")
    ap.add_argument("--tls12", action="store_true", help="TLS 1.2 only")
    ap.add_argument("--no-ticket", action="store_true", help="TLS 1.2 session IDs, no tickets")
    ap.add_argument("--interval", type=float, default=0)
    a = ap.parse_args()

    ctx = ssl.create_default_context(cafile=a.ca)
    if a.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if a.no_ticket:
        ctx.options |= ssl.OP_NO_TICKET
    session, issuer = None, None
    out = {"connections": 0, "resumed": 0, "cross_host": 0, "by_host": {}, "resumed_from": {},
           "errors": 0, "versions": {}, "statuses": {}, "first_error": ""}
    start = time.monotonic()
    i = 0
    while i < a.count or time.monotonic() - start < a.seconds:
        i += 1
        try:
            reused, sess, served, status, ver = one(ctx, a.host, a.port, a.sni, session, a.path, 10)
        except (OSError, ssl.SSLError) as e:
            out["errors"] += 1
            out["first_error"] = out["first_error"] or repr(e)
            session, issuer = None, None
            continue
        out["connections"] += 1
        out["by_host"][served] = out["by_host"].get(served, 0) + 1
        out["versions"][ver] = out["versions"].get(ver, 0) + 1
        out["statuses"][status] = out["statuses"].get(status, 0) + 1
        if reused and session is not None:
            out["resumed"] += 1
            key = f"{issuer}->{served}"
            out["resumed_from"][key] = out["resumed_from"].get(key, 0) + 1
            if issuer != served:
                out["cross_host"] += 1
        # The newest session: a resumed TLS 1.3 connection brings a fresh
        # ticket from the host that served it; TLS 1.2 keeps the old one.
        if not reused or ver == "TLSv1.3":
            issuer = served
        session = sess
        if a.interval:
            time.sleep(a.interval)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
