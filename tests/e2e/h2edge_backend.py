#!/usr/bin/python3
"""Misbehaving backends for tests/e2e/test_h2_edges.sh (stdlib + python3-h2).

    h2edge_backend.py MODE PORT [options]

Modes (h2c unless said otherwise; every h2c backend answers 200 "ok" with
content-length 2 and logs one line per event on stdout, flushed):

  slowread   huge windows (2^31-1 per stream, 2^30 more for the connection)
             and a 4 KiB receive buffer; for the first --slow-for seconds of
             a connection it reads 4 KiB every 20 ms, then at full speed.
             Answers at the request's END_STREAM.
  noread     answers --delay s (0.3) after the request head, without
             reading the body: the stream's receive window is never opened
             (the connection's is), and it never resets the stream.
             --max-streams N advertises SETTINGS_MAX_CONCURRENT_STREAMS N.
  lateopen   as noread, then --open-after s (0.5) after the answer sends a
             WINDOW_UPDATE for the stream, as a server reading the rest of
             the body late would (written raw: sent even if the proxy has
             reset the stream meanwhile, which a peer may do).
  ok         answers every request at once; logs "fields N x-h M" (how
             many header fields arrived, how many of them x-h*).
  blackhole  a TCP listener with a backlog of 0 whose accept queue is
             filled by its own connects and never accepted: later SYNs are
             dropped, a connect never completes.
  h1files    HTTP/1.1 keepalive: /big answers --big-mib MiB of zeros,
             /small answers "small\\n", anything else 404.
"""
import argparse
import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def log(*a):
    print(*a, flush=True)


def listener(port, backlog=64, rcvbuf=None):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:  # inherited by accepted sockets
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ls.bind(("127.0.0.1", port))
    ls.listen(backlog)
    return ls


def serve_forever(ls, fn, args):
    while True:
        s, _ = ls.accept()
        threading.Thread(target=fn, args=(s, args), daemon=True).start()


def answer(c, sid):
    c.send_headers(sid, [(":status", "200"), ("content-length", "2")])
    c.send_data(sid, b"ok", end_stream=True)


def h2_conn(settings=None):
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    if settings:
        c.local_settings = h2.settings.Settings(client=False, initial_values=settings)
    c.initiate_connection()
    return c


def slowread(sock, a):
    c = h2_conn({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    c.increment_flow_control_window(2**30)
    sock.sendall(c.data_to_send())
    t0 = time.time()
    while True:
        slow = time.time() - t0 < a.slow_for
        try:
            d = sock.recv(4096 if slow else 65536)
        except OSError:
            return
        if not d:
            return
        try:
            evs = c.receive_data(d)
        except Exception as e:
            log("h2 error", e)
            return
        for ev in evs:
            if isinstance(ev, h2.events.StreamEnded):
                answer(c, ev.stream_id)
                log("answered stream", ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                log("reset stream", ev.stream_id, "code", ev.error_code)
        out = c.data_to_send()
        if out:
            sock.sendall(out)
        if slow:
            time.sleep(0.02)


def noread(sock, a):
    """noread and lateopen: answer before reading the body."""
    settings = {}
    if a.max_streams:
        settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = a.max_streams
    c = h2_conn(settings)
    sock.sendall(c.data_to_send())
    pending = []  # (when, stream id): lateopen's WINDOW_UPDATEs
    sock.settimeout(0.05)
    while True:
        try:
            d = sock.recv(65536)
            if not d:
                return
            evs = c.receive_data(d)
        except socket.timeout:
            evs = []
        except Exception as e:
            log("error", e)
            return
        for ev in evs:
            if isinstance(ev, h2.events.RequestReceived):
                sock.sendall(c.data_to_send())
                time.sleep(a.delay)
                answer(c, ev.stream_id)
                log("answered stream", ev.stream_id, "before reading its body")
                if a.mode == "lateopen":
                    pending.append((time.time() + a.open_after, ev.stream_id))
            elif isinstance(ev, h2.events.DataReceived) and ev.flow_controlled_length:
                # The connection window only: the stream's stays shut.
                c.increment_flow_control_window(ev.flow_controlled_length)
            elif isinstance(ev, h2.events.StreamReset):
                log("reset stream", ev.stream_id, "code", ev.error_code)
        for when, sid in list(pending):
            if time.time() >= when:
                pending.remove((when, sid))
                # Raw, whatever h2 thinks of the stream: the proxy may have
                # reset it meanwhile, and a peer may still send this.
                sock.sendall(struct.pack(">I", 4)[1:] + bytes([8, 0]) +
                             struct.pack(">II", sid, 65535))
                log("WINDOW_UPDATE stream", sid)
        out = c.data_to_send()
        if out:
            try:
                sock.sendall(out)
            except OSError:
                return


def ok(sock, a):
    c = h2_conn()
    sock.sendall(c.data_to_send())
    while True:
        try:
            d = sock.recv(65536)
        except OSError:
            return
        if not d:
            return
        try:
            evs = c.receive_data(d)
        except Exception as e:
            log("h2 error", e)
            return
        for ev in evs:
            if isinstance(ev, h2.events.RequestReceived):
                xh = sum(1 for k, _ in ev.headers if k.startswith(b"x-h"))
                log(f"stream {ev.stream_id}: fields {len(ev.headers)} x-h {xh}")
                answer(c, ev.stream_id)
        out = c.data_to_send()
        if out:
            sock.sendall(out)


def h1files(sock, a):
    big = a.big_mib << 20
    chunk = b"\0" * 65536
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = sock.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b" ")[1]
            if path == b"/big":
                sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % big)
                left = big
                while left:
                    n = min(left, len(chunk))
                    sock.sendall(chunk[:n])
                    left -= n
            elif path == b"/small":
                sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsmall\n")
            else:
                sock.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
    except OSError:
        return


def blackhole(a):
    ls = listener(a.port, backlog=0)
    fill = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", a.port))
        except BlockingIOError:
            pass
        fill.append(s)
    log("accept queue filled")
    while True:
        time.sleep(60)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["slowread", "noread", "lateopen", "ok", "blackhole", "h1files"])
    p.add_argument("port", type=int)
    p.add_argument("--slow-for", type=float, default=4.0)
    p.add_argument("--delay", type=float, default=0.3)
    p.add_argument("--open-after", type=float, default=0.5)
    p.add_argument("--max-streams", type=int, default=0)
    p.add_argument("--big-mib", type=int, default=64)
    a = p.parse_args()
    if a.mode == "blackhole":
        blackhole(a)
    fn = {"slowread": slowread, "noread": noread, "lateopen": noread, "ok": ok,
          "h1files": h1files}[a.mode]
    ls = listener(a.port, rcvbuf=4096 if a.mode == "slowread" else None)
    serve_forever(ls, fn, a)


if __name__ == "__main__":
    main()
