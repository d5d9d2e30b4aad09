#!/usr/bin/python3
"""Client side of tests/e2e/test_proxy.sh (stdlib only).

    proxy_probe.py CHECK ARGS...

Each check drives the proxy on 127.0.0.1 with raw sockets (so requests can
be split, dripped or malformed exactly as wanted) and prints TAP-like
"ok - ..." / "not ok - ..." lines, which the shell script counts; any
other line is a diagnostic. Every socket operation has a timeout.
"""
import os
import random
import resource
import select
import socket
import ssl
import sys
import threading
import time

HOST = "127.0.0.1"


def result(cond, msg):
    print(("ok - " if cond else "not ok - ") + msg, flush=True)
    return cond


def note(msg):
    print("# " + msg, flush=True)


def connect(port, tls=False, timeout=5.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s


class Resp:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.complete = False  # the framing said the message ended
        self.eof = False  # the connection closed
        self.error = None


def read_response(s, head_req=False, deadline=5.0):
    """Read one response; never raises (socket errors end up in .error)."""
    r, buf = Resp(), b""
    end = time.monotonic() + deadline

    def more():
        nonlocal buf
        s.settimeout(max(0.05, end - time.monotonic()))
        d = s.recv(65536)
        if not d:
            r.eof = True
            raise EOFError()
        buf += d

    try:
        while True:  # skip 1xx heads
            while b"\r\n\r\n" not in buf:
                more()
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            r.status = int(lines[0].split(" ")[1])
            r.headers = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                r.headers[k.strip().lower()] = v.strip()
            if r.status >= 200:
                break
        if head_req or r.status in (204, 304):
            r.complete = True
        elif "chunked" in r.headers.get("transfer-encoding", ""):
            while True:
                while b"\r\n" not in buf:
                    more()
                line, buf = buf.split(b"\r\n", 1)
                n = int(line.split(b";")[0], 16)
                while len(buf) < n + 2:
                    more()
                r.body += buf[:n]
                buf = buf[n + 2:]
                if n == 0:
                    r.complete = True
                    break
        elif "content-length" in r.headers:
            n = int(r.headers["content-length"])
            while len(buf) < n:
                more()
            r.body, r.complete = buf[:n], True
        else:
            try:
                while True:
                    more()
            except EOFError:
                r.body, r.complete = buf, True
    except EOFError:
        pass
    except (OSError, ValueError, IndexError) as e:
        r.error = repr(e)
    if not r.complete and not r.body:
        r.body = buf
    return r


def describe(r):
    if r.status is None:
        return "no response (%s)" % ("closed" if r.eof else r.error or "?")
    return "%d%s" % (r.status, "" if r.complete else " (incomplete)")


def one_request(port, data, tls=False, deadline=5.0):
    try:
        s = connect(port, tls, deadline)
        s.sendall(data)
        r = read_response(s, deadline=deadline)
        s.close()
        return r
    except OSError as e:
        r = Resp()
        r.error = repr(e)
        return r


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def file_is(path, want):
    try:
        with open(path, "rb") as f:
            return f.read() == want
    except OSError:
        return False


# --- 1. heads split across reads ---------------------------------------------


def split_send(port, tls, first, rest, pause):
    s = connect(port, tls)
    s.sendall(first)
    time.sleep(pause)
    s.sendall(rest)
    r = read_response(s)
    s.close()
    return r


def check_split_small(port, tls, putdir):
    """PUT of 5 bytes, split at every offset of the request."""
    tag, body, bad = "tls" if tls else "tcp", b"hello", []

    def request(off):  # the same length for every offset
        return (f"PUT /put/small-{tag}-{off:03d} HTTP/1.1\r\nHost: t\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    n = len(request(0))
    for off in range(1, n):
        req = request(off)
        try:
            r = split_send(port, tls, req[:off], req[off:], 0.03)
        except OSError as e:
            bad.append(f"{off}: {e!r}")
            continue
        if r.status not in (201, 204) or not file_is(f"{putdir}/small-{tag}-{off:03d}", body):
            bad.append(f"{off}: {describe(r)}")
    result(not bad, f"small PUT split at each of its {n - 1} offsets{' over TLS' if tls else ''}"
           f" answered 2xx, body stored intact" + (f" (failed: {', '.join(bad[:8])})" if bad else ""))


def big_head_request(path, pad_headers, body_len):
    fields = "".join(f"X-Pad-{i:02d}: {'p' * 500}\r\n" for i in range(pad_headers))
    return (f"PUT {path} HTTP/1.1\r\nHost: t\r\n{fields}"
            f"Content-Length: {body_len}\r\n\r\n").encode()


def check_split_large(port, putdir):
    """15 KB head, a pause, then the final CRLF and 31 KB of body (and
    other split points) over TCP."""
    body = bytes(random.Random(1).randrange(256) for _ in range(31 * 1024))
    probe = big_head_request("/put/large-00", 29, len(body))
    hl = len(probe)
    points = [1, 100, 4096, 8192, 12000, hl - 4, hl - 3, hl - 2, hl - 1, hl, hl + 1, hl + 16384]
    bad = []
    for i, p in enumerate(points):
        req = big_head_request(f"/put/large-{i:02d}", 29, len(body)) + body
        try:
            r = split_send(port, False, req[:p], req[p:], 0.2)
        except OSError as e:
            bad.append(f"{p}: {e!r}")
            continue
        if r.status not in (201, 204) or not file_is(f"{putdir}/large-{i:02d}", body):
            bad.append(f"{p}: {describe(r)}")
    result(not bad, f"{hl}-byte head split at {len(points)} points (incl. a pause before the "
           f"final CRLF sent with 31 KB of body) answered 2xx, body intact"
           + (f" (failed: {', '.join(bad)})" if bad else ""))


def check_split_tls(port, putdir):
    """Over TLS: a ~16.3 KB head (two records) then a 16 KB body record,
    the head's tail and the body in one read. 2xx or 431, never a crash."""
    body = b"b" * 16384
    outcomes, bad = [], []
    for name, pads, how in (("a", 32, "one-write"), ("b", 32, "two-writes"),
                            ("c", 32, "pause-before-crlf"), ("d", 29, "pause-before-crlf")):
        head = big_head_request(f"/put/tls-{name}", pads, len(body))
        try:
            s = connect(port, True)
            if how == "one-write":
                s.sendall(head + body)
            elif how == "two-writes":
                s.sendall(head)
                s.sendall(body)
            else:
                s.sendall(head[:-2])
                time.sleep(0.2)
                s.sendall(head[-2:] + body)
            r = read_response(s)
            s.close()
        except OSError as e:
            bad.append(f"{len(head)}B/{how}: {e!r}")
            continue
        outcomes.append(f"{len(head)}B/{how}: {describe(r)}")
        ok = (r.status in (201, 204) and file_is(f"{putdir}/tls-{name}", body)) or \
            (r.status == 431 and len(head) > 16384)
        if not ok:
            bad.append(outcomes[-1])
    result(not bad, "TLS: 16.3 KB head + 16 KB body record (head tail and body in one read) "
           "answered 2xx or 431: " + "; ".join(outcomes) + (f" (bad: {bad})" if bad else ""))


def check_bighead(port):
    """A ~7 KB response head from the backend in two writes."""
    want = bytes(i * 7 % 251 for i in range(31 * 1024))  # fake_backend.BIG_BODY
    bad, points = [], (1, 100, 3500, -300, -4, -2, -1)
    for split in points:
        r = one_request(port, f"GET /bighead?split={split} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        if r.status != 200 or r.body != want or "x-filler-35" not in r.headers:
            bad.append(f"{split}: {describe(r)}")
    result(not bad, f"~7 KB backend response head sent in two writes ({len(points)} split "
           "points, the head's tail arriving with 31 KB of body) relayed intact"
           + (f" (failed: {', '.join(bad)})" if bad else ""))


# --- 3. replays ------------------------------------------------------------------


def count(logpath, line):
    with open(logpath) as f:
        return sum(1 for ln in f if ln.rstrip("\n") == line)


def fill_pool(port, n=6):
    """n concurrent slow requests leave n idle keepalive connections in
    the proxy's pool to the backend."""
    def one():
        one_request(port, b"GET /slowok HTTP/1.1\r\nHost: t\r\n\r\n")
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    time.sleep(0.1)


def check_retry(port, logpath):
    run = random.randrange(1 << 30)
    cases = [
        ("DELETE", "/drop-del", None, 1, "a DELETE to a backend that closes without answering"),
        ("POST", "/drop-post", b"a=1", 1, "a POST with a body to a backend that closes "
         "without answering"),
        ("POST", "/drop-post0", None, 1, "a POST without a body to a backend that closes "
         "without answering"),
        ("GET", "/drop-get", None, 2, "a GET on reused keepalive connections the backend "
         "closes before answering (one replay allowed)"),
        ("GET", "/sleep-get", None, 1, "a GET whose response comes after the 1 s request "
         "timeout (no replay after a timeout)"),
        ("POST", "/sleep-post", b"a=1", 1, "a POST whose response comes after the 1 s request "
         "timeout"),
    ]
    for method, path, body, limit, what in cases:
        fill_pool(port)
        target = f"{path}?run={run}"
        hdr = f"{method} {target} HTTP/1.1\r\nHost: t\r\n"
        if body is not None:
            hdr += f"Content-Length: {len(body)}\r\n"
        t0 = time.monotonic()
        r = one_request(port, (hdr + "\r\n").encode() + (body or b""), deadline=3.0)
        time.sleep(max(0.3, 3.5 - (time.monotonic() - t0)) if "sleep" in path else 0.3)
        n = count(logpath, f"{method} {target}")
        result(1 <= n <= limit, f"{what}: reached the backend {n} time(s) (at most {limit}); "
               f"client got {describe(r)}")


# --- 4. client deadlines --------------------------------------------------------


def wait_closed(s, limit):
    """Seconds until the peer closes (or answers and closes), or None."""
    t0 = time.monotonic()
    got = b""
    while time.monotonic() - t0 < limit:
        rd, _, _ = select.select([s], [], [], 0.1)
        if rd:
            try:
                d = s.recv(65536)
            except OSError:
                return time.monotonic() - t0, got
            if not d:
                return time.monotonic() - t0, got
            got += d
    return None, got


def check_slowloris(port, timeout_ms):
    limit = timeout_ms / 1000 + 2.0
    s = connect(port)
    drip = b"GET / HTTP/1.1\r\nHost: t\r\nX-Drip: " + b"a" * 100
    t0, closed_at, got = time.monotonic(), None, b""
    for i, b in enumerate(drip):
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed_at = time.monotonic() - t0
            break
        dt, g = wait_closed(s, 1.0)
        got += g
        if dt is not None:
            closed_at = time.monotonic() - t0
            break
        if time.monotonic() - t0 > limit + 3:
            break
    s.close()
    how = "408" if b" 408 " in got else ("a close" if closed_at is not None else "nothing")
    result(closed_at is not None and closed_at <= limit,
           f"slowloris head (1 byte/s) cut by {how} after "
           f"{closed_at if closed_at is None else round(closed_at, 1)} s "
           f"(header_timeout_ms {timeout_ms}, limit {limit:.1f} s)")


def check_bodystall(port, timeout_ms):
    limit = timeout_ms / 1000 + 2.0
    s = connect(port)
    s.sendall(b"PUT /stall HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    dt, got = wait_closed(s, limit + 3)
    s.close()
    how = "408" if b" 408 " in got else ("a close" if dt is not None else "nothing")
    result(dt is not None and dt <= limit,
           f"stalled request body (10 of 1000 bytes) cut by {how} after "
           f"{dt if dt is None else round(dt, 1)} s (body_timeout_ms {timeout_ms}, "
           f"limit {limit:.1f} s)")


def check_idle(port, timeout_ms):
    limit = timeout_ms / 1000 + 2.0
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    r = read_response(s)
    dt, _ = wait_closed(s, limit + 3)
    s.close()
    result(r.status == 200 and dt is not None and dt <= limit,
           f"idle keepalive connection (after a {describe(r)}) closed after "
           f"{dt if dt is None else round(dt, 1)} s (idle_timeout_ms {timeout_ms}, "
           f"limit {limit:.1f} s)")


# --- 5. connection caps -----------------------------------------------------------


def answered(socks, bufs, wait):
    end = time.monotonic() + wait
    while time.monotonic() < end:
        pending = [s for s in socks if b"\r\n\r\n" not in bufs[s]]
        if not pending:
            break
        rd, _, _ = select.select(pending, [], [], max(0.01, end - time.monotonic()))
        for s in rd:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            bufs[s] += d if d else b"<closed>\r\n\r\n"
    return [s for s in socks if bufs[s].startswith(b"HTTP/1.1 200")]


def check_cap(port, pid, cap):
    hz = os.sysconf("SC_CLK_TCK")
    socks, bufs = [], {}
    for _ in range(2 * cap):
        s = connect(port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        socks.append(s)
        bufs[s] = b""
    c0, t0 = cpu_ticks(pid), time.monotonic()
    served = answered(socks, bufs, 2.0)
    time.sleep(max(0, 2.0 - (time.monotonic() - t0)))
    cpu = (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0)
    result(len(served) == cap, f"client.max_connections = {cap}: {len(served)} of {2 * cap} "
           f"connections served while the rest wait")
    result(cpu < 0.10, f"no spinning while accept is paused: proxy CPU {cpu * 100:.1f}% over 2 s "
           f"(limit 10%)")
    for s in served:
        s.close()
    rest = [s for s in socks if s not in served]
    later = answered(rest, bufs, 4.0)
    result(len(rest) > 0 and len(later) == len(rest),
           f"the waiting connections are served once others close ({len(later)}/{len(rest)})")
    for s in rest:
        s.close()


def check_emfile(port, pid, logpath, n):
    hz = os.sysconf("SC_CLK_TCK")
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((HOST, port), timeout=3))
        except OSError as e:
            note(f"connect: {e!r}")
            break
    time.sleep(0.3)
    lines0 = sum(1 for _ in open(logpath, "rb"))
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(2.0)
    cpu = (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0)
    lines = sum(1 for _ in open(logpath, "rb")) - lines0
    with open(f"/proc/{pid}/limits") as f:
        lim = [ln.split()[3] for ln in f if ln.startswith("Max open files")][0]
    result(cpu < 0.15, f"fd limit {lim}, {len(socks)} connections: proxy CPU {cpu * 100:.1f}% "
           f"over 2 s (limit 15%)")
    result(lines < 50, f"fd limit {lim}, {len(socks)} connections: {lines} log lines in 2 s "
           f"(limit 50)")
    for s in socks:
        s.close()
    time.sleep(0.5)
    r = Resp()
    for _ in range(10):  # the proxy may still be closing the others
        r = one_request(port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", deadline=3)
        if r.status == 200:
            break
        time.sleep(0.3)
    result(r.status == 200, f"after the connections close the proxy serves again ({describe(r)})")


# --- 6. memory per idle connection ----------------------------------------------------


def check_mem(port, pid, n, path, what):
    """n idle TLS keepalive connections that each fetched path: RSS growth
    per connection. A fresh proxy per path, so memory freed by one round
    cannot hide the next one's."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    req = f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    for _ in range(20):  # warm-up: one-time allocations are not per connection
        one_request(port, req, tls=True)
    time.sleep(0.5)
    rss0 = rss_kib(pid)
    socks, bad = [], 0
    for _ in range(n):
        try:
            s = connect(port, True)
            s.sendall(req)
            r = read_response(s)
            bad += r.status != 200
            socks.append(s)
        except OSError:
            bad += 1
    time.sleep(1.0)
    rss1 = rss_kib(pid)
    per = (rss1 - rss0) / n
    print(f"MEM_PER_CONN_KIB {per:.1f} (after {what})")
    result(bad == 0 and per < 32,
           f"{n} idle TLS keepalive connections after {what} ({bad} failed): RSS {rss0} -> "
           f"{rss1} KiB, {per:.1f} KiB per connection (limit 32; goal <= 8 "
           f"{'met' if per <= 8 else 'NOT met'})")
    for s in socks:
        s.close()


# --- 7. HTTP/1 semantics ------------------------------------------------------------


def check_nobody(port, path):
    s = connect(port)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    r1 = read_response(s)
    t0 = time.monotonic()
    r2 = Resp()
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        r2 = read_response(s, deadline=3.0)
    except OSError as e:
        r2.error = repr(e)
    dt = time.monotonic() - t0
    s.close()
    result(r1.status in (204, 304) and r2.status == 200 and r2.complete and dt < 2,
           f"{path[1:4]} WITH Content-Length from the backend: got {describe(r1)}; the next "
           f"request on the connection got {describe(r2)} in {dt:.1f} s")


def echo(port, req):
    r = one_request(port, req)
    return r, (r.body.decode("latin-1").rstrip("\n").split("|") if r.status == 200 else [])


def check_forwarded(port):
    r, f = echo(port, b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 6.6.6.6\r\n"
                      b"X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\r\n")
    result(f[:3] == ["127.0.0.1", "127.0.0.1", ""],
           f"client X-Forwarded-For/X-Real-IP/Forwarded replaced, not passed on "
           f"(backend saw XFF|X-Real-IP|Forwarded = {'|'.join(f[:3]) or describe(r)})")


def reached(nginx_log, marker):
    time.sleep(0.3)
    with open(nginx_log, "rb") as f:
        return marker.encode() in f.read()


def check_host(port, marker, nginx_log):
    r = one_request(port, f"GET /{marker}-nohost HTTP/1.1\r\nUser-Agent: e2e\r\n\r\n".encode())
    seen = reached(nginx_log, f"{marker}-nohost")
    result(r.status == 400 and not seen, f"HTTP/1.1 request without Host gets 400 from the "
           f"proxy (got {describe(r)}; reached the backend: {seen})")
    r = one_request(port, f"GET /{marker}-twohosts HTTP/1.1\r\nHost: a.test\r\n"
                          f"Host: b.test\r\n\r\n".encode())
    seen = reached(nginx_log, f"{marker}-twohosts")
    result(r.status == 400 and not seen, f"HTTP/1.1 request with two Host fields gets 400 from "
           f"the proxy (got {describe(r)}; reached the backend: {seen})")


def check_absolute(port):
    r, f = echo(port, b"GET http://example.test/echo/x?y HTTP/1.1\r\nHost: other.test\r\n\r\n")
    result(f[4:6] == ["example.test", "/echo/x?y"],
           f"absolute-form target reaches the backend as origin-form with its Host "
           f"(backend saw Host {f[4] if len(f) > 4 else describe(r)!r}, "
           f"target {f[5] if len(f) > 5 else '-'!r})")


def check_te_space(port, marker, nginx_log):
    req = (f"POST /{marker} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n"
           f"5\r\nhello\r\n0\r\n\r\n").encode()
    r = one_request(port, req)
    seen = reached(nginx_log, marker)
    result(r.status == 400 and not seen, f"'Transfer-Encoding : chunked' gets 400 "
           f"(got {describe(r)}) and never reaches the backend (reached: {seen})")


def check_connection_named(port):
    r, f = echo(port, b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: X-Secret\r\n"
                      b"X-Secret: 1\r\n\r\n")
    result(len(f) > 3 and f[3] == "", f"a field named in Connection (X-Secret) is not forwarded "
           f"(backend saw X-Secret = {f[3] if len(f) > 3 else describe(r)!r})")


def check_1xx_body(port):
    r = one_request(port, b"GET /1xxbody HTTP/1.1\r\nHost: t\r\n\r\n")
    result(r.status == 502, f"a 1xx response with a body from the backend gives 502 "
           f"(got {describe(r)}{' body ' + repr(r.body[:20]) if r.status == 200 else ''})")


# --- 8. upstream keepalive vs a backend's idle close ----------------------------------


def check_keepalive(port, n, interval):
    statuses = []
    for i in range(n):
        t0 = time.monotonic()
        r = one_request(port, f"POST /ka-{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
                              f"hello".encode())
        statuses.append(describe(r))
        if i < n - 1:
            time.sleep(max(0, interval - (time.monotonic() - t0)))
    result(all(s == "200" for s in statuses),
           f"a POST every {interval} s to a backend closing idle connections after 5 s: "
           f"no 502 ({', '.join(statuses)})")


def main():
    a = sys.argv[1:]
    cmd = a[0]
    if cmd == "split-small":
        check_split_small(int(a[1]), a[2] == "tls", a[3])
    elif cmd == "split-large":
        check_split_large(int(a[1]), a[2])
    elif cmd == "split-tls":
        check_split_tls(int(a[1]), a[2])
    elif cmd == "bighead":
        check_bighead(int(a[1]))
    elif cmd == "retry":
        check_retry(int(a[1]), a[2])
    elif cmd == "slowloris":
        check_slowloris(int(a[1]), int(a[2]))
    elif cmd == "bodystall":
        check_bodystall(int(a[1]), int(a[2]))
    elif cmd == "idle":
        check_idle(int(a[1]), int(a[2]))
    elif cmd == "cap":
        check_cap(int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "emfile":
        check_emfile(int(a[1]), int(a[2]), a[3], int(a[4]))
    elif cmd == "mem":
        check_mem(int(a[1]), int(a[2]), int(a[3]), a[4], a[5])
    elif cmd == "nobody":
        check_nobody(int(a[1]), a[2])
    elif cmd == "forwarded":
        check_forwarded(int(a[1]))
    elif cmd == "host":
        check_host(int(a[1]), a[2], a[3])
    elif cmd == "absolute":
        check_absolute(int(a[1]))
    elif cmd == "te-space":
        check_te_space(int(a[1]), a[2], a[3])
    elif cmd == "connection":
        check_connection_named(int(a[1]))
    elif cmd == "1xx":
        check_1xx_body(int(a[1]))
    elif cmd == "keepalive":
        check_keepalive(int(a[1]), int(a[2]), float(a[3]))
    else:
        sys.exit(f"unknown check {cmd}")


if __name__ == "__main__":
    main()
