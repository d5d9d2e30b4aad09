#!/usr/bin/python3
"""HTTP/2 (h2c prior knowledge) clients for tests/e2e/test_h2_edges.sh.

    h2edge_client.py MODE PORT [options]

Each mode prints what it saw (one line per event, then one summary line
starting with "summary:") and exits 0 if the proxy behaved, 1 if not.

  cancel     uploads on streams 1 and 3 as fast as the windows allow; at
             --cancel-at s both are reset (CANCEL) and stream 5 uploads
             1 MiB and waits for its answer (--wait s): 0 if it is a 200.
  uploads    --count POSTs of --size bytes each, one after the other on
             one connection: 0 if every one is answered 200 with its
             whole body sent (a shrinking connection window stalls them).
  slowread   GET /big with 16 MiB windows, read ~320 KB/s through a 32 KiB
             receive buffer; at --small-at s GET /small on the same
             connection; run --run s: 0 if /small is answered within
             --small-within s, the connection stays open and the proxy's
             PINGs (at least --min-pings) reach the client, which answers.
  badhdr     stream 1: GET /sleep?s=--sleep; stream 3: a request with a
             connection-specific field (the proxy refuses it): 0 if
             stream 1 is answered 200 and the connection stays open.
  noconnect  0 if a TCP connect to PORT does not complete in 0.5 s.
"""
import argparse
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

T0 = time.time()


def log(*a):
    print(f"{time.time() - T0:6.2f}s", *a, flush=True)


def result(ok, text):
    print("summary:", text, flush=True)
    sys.exit(0 if ok else 1)


def req(path, method="GET"):
    return [(":method", method), (":path", path), (":scheme", "http"), (":authority", "x")]


def connect(port, rcvbuf=None, cfg=None, settings=None, conn_window=0):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    c = h2.connection.H2Connection(
        config=cfg or h2.config.H2Configuration(client_side=True))
    if settings:
        c.local_settings = h2.settings.Settings(client=True, initial_values=settings)
    c.initiate_connection()
    if conn_window:
        c.increment_flow_control_window(conn_window)
    s.sendall(c.data_to_send())
    return s, c


def status_of(ev):
    return dict(ev.headers).get(b":status", b"?").decode()


def cancel(a):
    s, c = connect(a.port)
    for sid in (1, 3):
        c.send_headers(sid, req(f"/up{sid}", "POST"))
    s.sendall(c.data_to_send())
    sent = {1: 0, 3: 0, 5: 0}
    live = {1, 3}
    ended = phase2 = False
    s.setblocking(False)
    while time.time() - T0 < a.cancel_at + a.wait:
        if not phase2 and time.time() - T0 > a.cancel_at:
            for sid in (1, 3):
                c.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            live = {5}
            phase2 = True
            c.send_headers(5, req("/up5", "POST"))
            log(f"cancelled streams 1 and 3 after {sent[1]} and {sent[3]} bytes; stream 5 starts a 1 MiB upload")
        for sid in list(live):
            if sid == 5 and sent[5] >= 1 << 20:
                if not ended:
                    c.end_stream(5)
                    ended = True
                continue
            try:
                w = min(c.local_flow_control_window(sid), c.max_outbound_frame_size)
            except Exception:
                continue
            if w > 0:
                c.send_data(sid, b"z" * w)
                sent[sid] += w
        out = c.data_to_send()
        if out:
            s.setblocking(True)
            try:
                s.sendall(out)
            except OSError as e:
                result(False, f"stream 5: no answer, send failed at {time.time() - T0:.2f}s ({e})")
            s.setblocking(False)
        r, _, _ = select.select([s], [], [], 0.01)
        if not r:
            continue
        try:
            d = s.recv(65536)
        except OSError as e:
            result(False, f"stream 5: no answer, connection error at {time.time() - T0:.2f}s ({e})")
        if not d:
            result(False, f"stream 5: no answer, connection closed by the proxy at {time.time() - T0:.2f}s")
        for ev in c.receive_data(d):
            if getattr(ev, "stream_id", 0) != 5:
                continue
            if isinstance(ev, h2.events.ResponseReceived):
                st = status_of(ev)
                result(st == "200", f"stream 5 answered {st} at {time.time() - T0:.2f}s "
                       f"after {sent[5]} bytes sent")
            if isinstance(ev, h2.events.StreamReset):
                result(False, f"stream 5 reset (code {ev.error_code}) at {time.time() - T0:.2f}s")
    result(False, f"stream 5: no answer in {a.wait:.0f}s after the cancels ({sent[5]} bytes sent)")


def uploads(a):
    s, c = connect(a.port)
    s.settimeout(a.stall)
    good = 0
    windows = []  # the connection send window after each upload
    problems = []
    for i in range(a.count):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, req("/up", "POST"))
        s.sendall(c.data_to_send())
        left = a.size
        status = None
        done = False
        try:
            while not done:
                if left:
                    try:
                        w = min(c.local_flow_control_window(sid), left, c.max_outbound_frame_size)
                        if w > 0:
                            c.send_data(sid, b"x" * w, end_stream=(w == left))
                            left -= w
                            s.sendall(c.data_to_send())
                            continue
                    except h2.exceptions.ProtocolError:
                        pass  # answered and closed before the body was all sent
                d = s.recv(65536)
                if not d:
                    raise EOFError
                for ev in c.receive_data(d):
                    if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                        status = status_of(ev)
                    if isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and ev.stream_id == sid:
                        done = True
                out = c.data_to_send()
                if out:
                    s.sendall(out)
        except socket.timeout:
            log(f"upload {i + 1}: stalled {a.stall:.0f}s with {left} bytes unsent, "
                f"connection send window {c.outbound_flow_control_window}")
            problems.append(f"upload {i + 1} stalled")
            break
        except (EOFError, OSError) as e:
            log(f"upload {i + 1}: connection lost ({type(e).__name__})")
            problems.append(f"upload {i + 1}: connection lost")
            break
        log(f"upload {i + 1}: status {status}, {a.size - left}/{a.size} bytes sent, "
            f"connection send window {c.outbound_flow_control_window}")
        windows.append(c.outbound_flow_control_window)
        if status == "200" and left == 0:
            good += 1
        else:
            problems.append(f"upload {i + 1}: {status}, {left} unsent")
    result(good == a.count,
           f"{good}/{a.count} uploads of {a.size} bytes answered 200 with the whole body sent; "
           f"lowest connection send window after an upload {min(windows) if windows else 'n/a'}"
           + (f" ({'; '.join(problems[:3])})" if problems else ""))


def slowread(a):
    s, c = connect(a.port, rcvbuf=32768,
                   settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 << 20},
                   conn_window=16 << 20)
    c.send_headers(1, req("/big"), end_stream=True)
    s.sendall(c.data_to_send())
    got = 0
    asked = answered = closed = None
    pings = 0
    s.settimeout(0.5)
    while time.time() - T0 < a.run:
        try:
            d = s.recv(16384)
        except socket.timeout:
            d = None
        except OSError as e:
            closed = f"error {e}"
            break
        if d == b"":
            closed = "closed by the proxy"
            break
        if d:
            for ev in c.receive_data(d):
                if isinstance(ev, h2.events.DataReceived):
                    if ev.stream_id == 1:
                        got += len(ev.data)
                    if ev.stream_id == 3 and answered is None:
                        answered = time.time()
                        log(f"/small answered {answered - asked:.2f}s after asking")
                if isinstance(ev, h2.events.PingReceived):
                    pings += 1  # h2 queues the ACK, sent below
                    log(f"PING received and answered ({got} bytes of /big read)")
                if isinstance(ev, h2.events.ConnectionTerminated):
                    log(ev)
                    closed = closed or f"GOAWAY (code {ev.error_code})"
                if isinstance(ev, h2.events.StreamReset):
                    log(ev)
                    closed = closed or f"stream {ev.stream_id} reset"
            out = c.data_to_send()
            if out:
                s.sendall(out)
        if asked is None and time.time() - T0 > a.small_at:
            c.send_headers(3, req("/small"), end_stream=True)
            s.sendall(c.data_to_send())
            asked = time.time()
            log(f"asked /small ({got} bytes of /big read so far)")
        time.sleep(0.05)
    if closed:
        log(f"connection {closed} after {got} bytes of /big")
    wait = f"{answered - asked:.2f}s" if answered else f"no answer in {time.time() - asked:.1f}s"
    ok = (answered is not None and answered - asked < a.small_within and not closed
          and pings >= a.min_pings)
    result(ok, f"/small next to a slow /big download: {wait} (limit {a.small_within:.0f}s); "
           f"connection {'open' if not closed else closed} at {time.time() - T0:.1f}s; "
           f"{pings} PING(s) answered; {got} bytes of /big read")


def badhdr(a):
    cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                    normalize_outbound_headers=False)
    s, c = connect(a.port, cfg=cfg)
    s.settimeout(a.sleep + 5)
    c.send_headers(1, req(f"/sleep?s={a.sleep:g}"), end_stream=True)
    c.send_headers(3, req("/x") + [("connection", "keep-alive")], end_stream=True)
    s.sendall(c.data_to_send())
    status = None
    while True:
        try:
            d = s.recv(65536)
        except OSError as e:
            result(False, f"stream 1: no answer, {e} at {time.time() - T0:.1f}s")
        if not d:
            result(False, f"stream 1: no answer, connection closed by the proxy at {time.time() - T0:.1f}s")
        for ev in c.receive_data(d):
            if isinstance(ev, h2.events.StreamReset):
                log(f"stream {ev.stream_id} reset, code {ev.error_code}")
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == 1:
                status = status_of(ev)
            if isinstance(ev, h2.events.StreamEnded) and ev.stream_id == 1:
                result(status == "200", f"stream 1 (/sleep?s={a.sleep:g}) answered {status} at "
                       f"{time.time() - T0:.1f}s, after stream 3's header block was refused")
        out = c.data_to_send()
        if out:
            s.sendall(out)


def noconnect(a):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", a.port))
    except socket.timeout:
        result(True, "a direct connect does not complete in 0.5 s")
    except OSError as e:
        result(False, f"a direct connect fails at once: {e}")
    result(False, "a direct connect completes")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["cancel", "uploads", "slowread", "badhdr", "noconnect"])
    p.add_argument("port", type=int)
    p.add_argument("--cancel-at", type=float, default=1.5)
    p.add_argument("--wait", type=float, default=10)
    p.add_argument("--count", type=int, default=14)
    p.add_argument("--size", type=int, default=131070)
    p.add_argument("--stall", type=float, default=3)
    p.add_argument("--run", type=float, default=7)
    p.add_argument("--small-at", type=float, default=1)
    p.add_argument("--small-within", type=float, default=2)
    p.add_argument("--min-pings", type=int, default=1)
    p.add_argument("--sleep", type=float, default=3)
    a = p.parse_args()
    globals()[a.mode](a)


if __name__ == "__main__":
    main()
