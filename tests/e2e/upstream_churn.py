#!/usr/bin/python3
"""Change a cluster's backends through the proxy's admin API, fast.

  upstream_churn.py SOCKET CLUSTER --rate 100 --seconds 10 --pool A,B --spare C

Cycles through adds, removes, drains, undrains and weight changes of the
--spare backend and the --pool backends (the pool always keeps at least one
backend taking requests, so no request has to fail), at --rate updates a
second. Each call is one HTTP/1.1 request on the Unix socket. Prints one
JSON line: {"updates": N, "refused": R, "errors": [...], "seconds": S,
"version": V}. refused counts non-2xx answers (there should be none).
"""
import argparse
import json
import socket
import sys
import time


def call(path, method, url, body=None):
    """One request to the admin socket; returns (status, parsed JSON)."""
    data = json.dumps(body).encode() if body is not None else b""
    req = (f"{method} {url} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendall(req)
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    finally:
        s.close()
    head, _, payload = resp.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload) if payload.strip() else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("cluster")
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--count", type=int, default=0, help="stop after this many updates")
    ap.add_argument("--pool", required=True, help="comma-separated ADDR:PORT, in the set at start")
    ap.add_argument("--spare", required=True, help="ADDR:PORT added and removed again and again")
    a = ap.parse_args()
    pool = a.pool.split(",")
    base = f"/v1/clusters/{a.cluster}/backends"
    # Each step keeps at least one pool backend taking requests.
    steps = [
        ("POST", {"address": a.spare, "weight": 2}),
        ("POST", {"address": pool[0], "drain": True}),
        ("POST", {"address": pool[-1], "weight": 3}),
        ("POST", {"address": pool[0], "drain": False}),
        ("DELETE", {"address": a.spare}),
        ("POST", {"address": pool[-1], "weight": 1}),
        ("PUT", None),  # the whole set, with a version
    ]
    out = {"updates": 0, "refused": 0, "errors": [], "version": 0}
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < a.seconds and not (a.count and i >= a.count):
        method, body = steps[i % len(steps)]
        if method == "PUT":
            body = {"version": out["version"] + 1,
                    "backends": [{"address": p, "weight": 1} for p in pool]}
        try:
            status, reply = call(a.socket, method, base, body)
        except (OSError, ValueError) as e:
            status, reply = 0, {"error": repr(e)}
        if 200 <= status < 300:
            out["updates"] += 1
            out["version"] = reply["version"]
        else:
            out["refused"] += 1
            if len(out["errors"]) < 5:
                out["errors"].append(f"{method} {body}: {status} {reply}")
        i += 1
        # Keep the pace: the i-th update is due at start + i / rate.
        delay = start + i / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    out["seconds"] = round(time.monotonic() - start, 3)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
