#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Fresh requests through the VIPs, one new connection each, until stopped.

    req_loop.py --url https://192.0.2.10/ --url http://[2001:db8::10]/ \
                --ca ca.pem --rate 30 --out result.json

Each request opens its own TCP (and TLS) connection, so every one is a new
flow through the router's ECMP and the LBs' Maglev rings: a request that
fails says a new flow met a dead host, a withdrawn route or a reset. Runs
until SIGTERM/SIGINT (or --duration), then writes counts, the failures with
their time and reason, and which host served how many (X-Served-By) to
--out as JSON.
"""
import argparse
import http.client
import json
import signal
import ssl
import time
import urllib.parse

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def one(url, ctx, timeout):
    u = urllib.parse.urlsplit(url)
    host = u.hostname
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(host, u.port or 443, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, u.port or 80, timeout=timeout)
    try:
        conn.request("GET", u.path or "/", headers={"Host": "vip.popbox.test"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Served-By", "")
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", action="append", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--rate", type=float, default=30.0, help="requests per second")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--duration", type=float, default=600.0, help="bound on the run")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctx = ssl.create_default_context(cafile=a.ca) if a.ca else ssl.create_default_context()
    ctx.check_hostname = False  # the certificate names the VIPs and vip.popbox.test
    start = time.monotonic()
    gap = 1.0 / a.rate
    ok = 0
    failures = []
    served = {}
    i = 0
    while not stop and time.monotonic() - start < a.duration:
        url = a.url[i % len(a.url)]
        i += 1
        t = time.monotonic()
        try:
            status, by = one(url, ctx, a.timeout)
            if status == 200:
                ok += 1
                served[by] = served.get(by, 0) + 1
            else:
                failures.append({"t": round(t - start, 3), "url": url, "error": "HTTP %d" % status})
        except Exception as e:  # any failure of a new request counts
            failures.append({"t": round(t - start, 3), "url": url, "error": repr(e)[:200]})
        left = gap - (time.monotonic() - t)
        if left > 0:
            time.sleep(left)
    with open(a.out, "w") as f:
        json.dump({"requests": ok + len(failures), "ok": ok, "failed": len(failures),
                   "failures": failures[:50], "served_by": served,
                   "seconds": round(time.monotonic() - start, 2)}, f)


if __name__ == "__main__":
    main()
