#!/usr/bin/python3
"""Connections a proxy has not accepted yet, across its SIGTERM
(tests/e2e/test_drain.sh).

    backlog_client.py HOST:PORT IDLE QUEUED READY_FILE

Opens IDLE keepalive connections and sends one request on each, which
(with client.max_connections = IDLE and one worker) puts the proxy at its
cap: its accept pauses. Then opens QUEUED more connections; the kernel
completes their handshakes and queues them, unaccepted, and each sends a
GET. Creates READY_FILE and waits up to 10 s for every answer: the test
sends SIGTERM meanwhile. A proxy that closes its listening socket with
those connections queued resets them, though their clients sent a
request; a careful one accepts them and answers each with
"Connection: close".

Prints one JSON object: {"idle_ok", "answered_before" (queued connections
answered before READY_FILE: none should be), "queued": [status or error, ...],
"queued_close": how many answers said Connection: close,
"idle_closed": idle connections the proxy closed}.
"""
import json
import socket
import sys
import time


def read_response(sock, deadline):
    """Status and lower-case head of one response on sock (body: by
    Content-Length), or raises."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.1, deadline - time.time()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip().lower()
    want = int(headers.get("content-length", "0"))
    while len(body) < want:
        sock.settimeout(max(0.1, deadline - time.time()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return status, headers


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n_idle, n_queued, ready = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    req = ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode()
    out = {"idle_ok": 0, "answered_before": 0, "queued": [], "queued_close": 0,
           "idle_closed": 0}
    idle = []
    for _ in range(n_idle):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(req)
        st, _ = read_response(s, time.time() + 5)
        out["idle_ok"] += st == 200
        idle.append(s)
    queued = []
    for _ in range(n_queued):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(req)
        queued.append(s)
    time.sleep(0.3)  # the proxy had the chance to accept them: it must not
    for s in queued:  # at its cap, nothing is answered yet
        s.setblocking(False)
        try:
            out["answered_before"] += len(s.recv(1, socket.MSG_PEEK)) > 0
        except BlockingIOError:
            pass
        s.setblocking(True)
    open(ready, "w").close()
    deadline = time.time() + 10
    for s in queued:
        try:
            st, h = read_response(s, deadline)
            out["queued"].append(st)
            out["queued_close"] += h.get("connection") == "close"
        except OSError as e:
            out["queued"].append(repr(e))
        s.close()
    for s in idle:
        try:
            s.settimeout(max(0.1, deadline - time.time()))
            out["idle_closed"] += s.recv(1) == b""
        except OSError:
            pass
        s.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
