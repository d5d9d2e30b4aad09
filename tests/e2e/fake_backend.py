#!/usr/bin/python3
"""A misbehaving HTTP/1.1 backend for tests/e2e/test_proxy.sh (stdlib only).

    fake_backend.py PORT LOG [--idle-close SECONDS]

One thread per connection, keepalive, request bodies read in full (by
Content-Length or chunked) before anything is answered. Every request that
arrives is appended to LOG as "METHOD TARGET" (one line, flushed at once),
so a test can count how many times the proxy sent it. What happens next
depends on the path:

  /drop...        read the request, close without a byte of answer (FIN)
  /sleep...       answer 200 only after ?s= seconds (default 3)
  /slowok         answer 200 after 0.3 s (to open several pool connections)
  /slowread       read the body at ~1 MB/s, then 200
  /204cl, /304cl  a 204 / 304 head WITH Content-Length: 5 and no body
  /1xxbody        a 103 with Content-Length and a body, then a 200
  /rstbody        200 with a close-delimited body, then a reset (SO_LINGER 0)
  /bighead        a ~7 KB response head and a 31 KiB body written in two
                  writes split at ?split=N (N < 0: N bytes before the end
                  of the head)
  anything else   200 "ok\\n" with Content-Length

--idle-close S behaves like Node's keepalive timeout, with the race made
deterministic: a request arriving on a connection that was idle for S
seconds or more is answered by a close (the close "crossed" it on the
wire, logged as "RACE METHOD TARGET"), and an idle connection is closed
for good after S + 1.5 seconds.
"""
import socket
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()


def log(f, line):
    with LOCK:
        f.write(line + "\n")
        f.flush()


class Closed(Exception):
    pass


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise Closed()
        self.buf += d

    def until(self, sep, limit=1 << 20):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise Closed()
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n, rate=None):
        got = 0
        while got < n:
            if not self.buf:
                self.fill()
            take = min(n - got, len(self.buf))
            self.buf = self.buf[take:]
            got += take
            if rate:  # bytes per second: ~64 KiB at a time
                time.sleep(take / rate)


def read_request(r):
    head = r.until(b"\r\n\r\n", 256 * 1024).decode("latin-1")
    lines = head.split("\r\n")
    method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs.setdefault(k.strip().lower(), v.strip())
    return method, target, hdrs


def read_body(r, hdrs, rate=None):
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        while True:
            size = int(r.until(b"\r\n").split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while r.until(b"\r\n") != b"\r\n":
                    pass
                return
            r.exactly(size, rate)
            r.until(b"\r\n")
    n = int(hdrs.get("content-length", "0") or 0)
    if n:
        r.exactly(n, rate)


def respond(sock, status, body=b"ok\n", extra=""):
    sock.sendall(
        (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n{extra}"
         f"Content-Length: {len(body)}\r\n\r\n").encode() + body)


# 31 KiB: the rest of a split head and this body arrive in one read.
BIG_BODY = bytes(i * 7 % 251 for i in range(31 * 1024))


def big_head():
    fill = "".join(f"X-Filler-{i:02d}: {'v' * 180}\r\n" for i in range(36))
    return ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + fill +
            f"Content-Length: {len(BIG_BODY)}\r\n\r\n").encode()


def serve(sock, f, idle_close):
    r = Reader(sock)
    last = time.monotonic()
    try:
        while True:
            if idle_close:
                sock.settimeout(idle_close + 1.5)
            try:
                if not r.buf:
                    r.fill()
            except socket.timeout:
                return
            sock.settimeout(None)
            method, target, hdrs = read_request(r)
            path = urlsplit(target).path
            q = parse_qs(urlsplit(target).query)
            if idle_close and time.monotonic() - last >= idle_close:
                log(f, f"RACE {method} {target}")
                return
            log(f, f"{method} {target}")
            if path == "/slowread":
                read_body(r, hdrs, rate=1 << 20)
            else:
                read_body(r, hdrs)
            if path.startswith("/drop"):
                return
            if path.startswith("/sleep"):
                time.sleep(float(q.get("s", ["3"])[0]))
                respond(sock, "200 OK")
            elif path == "/slowok":
                time.sleep(0.3)
                respond(sock, "200 OK")
            elif path == "/204cl":
                sock.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")
            elif path == "/304cl":
                sock.sendall(b"HTTP/1.1 304 Not Modified\r\nETag: \"e2e\"\r\n"
                             b"Content-Length: 5\r\n\r\n")
            elif path == "/1xxbody":
                sock.sendall(b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\nhello"
                             b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbad\n")
            elif path == "/rstbody":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" +
                             b"a" * 4000)
                time.sleep(0.5)
                sock.sendall(b"b" * 4000)
                time.sleep(0.2)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            elif path == "/bighead":
                head = big_head()
                split = int(q.get("split", ["100"])[0])
                if split < 0:  # counted from the end of the head
                    split += len(head)
                data = head + BIG_BODY
                sock.sendall(data[:split])
                time.sleep(0.15)
                sock.sendall(data[split:])
            else:
                respond(sock, "200 OK")
            last = time.monotonic()
            if hdrs.get("connection", "").lower() == "close":
                return
    except (Closed, OSError, ValueError):
        pass
    finally:
        sock.close()


def main():
    port, logpath = int(sys.argv[1]), sys.argv[2]
    idle_close = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--idle-close" else 0
    f = open(logpath, "a")
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1024)
    while True:
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(s, f, idle_close), daemon=True).start()


if __name__ == "__main__":
    main()
