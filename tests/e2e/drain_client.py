#!/usr/bin/python3
"""Keep HTTP/1.1 and HTTP/2 clients busy against a proxy and tell apart the
requests the proxy failed from the ones it never took (tests/e2e/test_drain.sh).

    drain_client.py HOST:PORT [--h1 N] [--h2 N] [--streams M] [--path P]
                    [--duration S] [--stop-file F] [--ready-file F]
                    [--ca CA.pem]

--ca: TLS (ALPN h2 / http/1.1), verifying the proxy against CA.pem.

Each HTTP/1.1 client sends requests one after another on a keepalive
connection and reconnects when a response says "Connection: close"; each
HTTP/2 client keeps M streams in flight and, after a GOAWAY, opens no new
stream, lets those the server will process finish, and reconnects. A client
whose connect is refused retries every 50 ms. They stop after S seconds or
when F exists.

What a well-behaved proxy must never do while it drains or hands over is
fail a request it took: an HTTP/1.1 request sent on an open connection that
gets no response or a non-200 one, an HTTP/2 stream at or below the GOAWAY's
last stream ID that is reset or left unfinished. Those are "failed". Streams
above the last stream ID ("unprocessed", RFC 9113 section 6.8: safe to
retry) and refused connects are counted apart: after SIGTERM the proxy is
meant to refuse; in an upgrade it is not.

Prints one JSON object: {"h1": {...}, "h2": {...}} with the counters.
"""
import argparse
import http.client
import json
import os
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events

LOCK = threading.Lock()
STATS = {
    "h1": {"ok": 0, "failed": 0, "closed_by_server": 0, "refused": 0, "errors": []},
    "h2": {"ok": 0, "failed": 0, "goaway": 0, "unprocessed": 0, "refused": 0, "errors": []},
}


def count(proto, key, n=1, err=None):
    with LOCK:
        STATS[proto][key] += n
        if err and len(STATS[proto]["errors"]) < 10:
            STATS[proto]["errors"].append(err)


def should_stop(args, t_end):
    return time.time() >= t_end or (args.stop_file and os.path.exists(args.stop_file))


def tls_context(args, alpn):
    if not args.ca:
        return None
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.set_alpn_protocols([alpn])
    return ctx


def h1_client(args, host, port, t_end):
    conn = None
    ctx = tls_context(args, "http/1.1")
    while not should_stop(args, t_end):
        if conn is None:
            conn = (http.client.HTTPSConnection(host, port, timeout=10, context=ctx) if ctx
                    else http.client.HTTPConnection(host, port, timeout=10))
            try:
                conn.connect()
            except ConnectionRefusedError:
                count("h1", "refused")
                conn = None
                time.sleep(0.05)
                continue
        try:
            conn.request("GET", args.path)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException) as e:
            # Sent on an open connection, no (whole) response: failed.
            count("h1", "failed", err=repr(e))
            conn.close()
            conn = None
            continue
        count("h1", "ok" if resp.status == 200 else "failed",
              err=None if resp.status == 200 else "status %d" % resp.status)
        if resp.will_close:
            count("h1", "closed_by_server")
            conn.close()
            conn = None
    if conn:
        conn.close()


class DrainingH2Connection(h2.connection.H2Connection):
    """h2 closes the whole connection state on the first GOAWAY, and then
    refuses the frames of the streams the server still serves (RFC 9113
    section 6.8 says they complete). Keep the connection open and just
    report the GOAWAY. Relies on h2's frame dispatch (checked with 4.1)."""

    def _receive_goaway_frame(self, frame):
        ev = h2.events.ConnectionTerminated()
        ev.error_code = frame.error_code
        ev.last_stream_id = frame.last_stream_id
        ev.additional_data = frame.additional_data or None
        return [], [ev]


def h2_session(args, host, port, t_end):
    """One HTTP/2 connection until the server ends it or time is up."""
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except ConnectionRefusedError:
        count("h2", "refused")
        time.sleep(0.05)
        return
    ctx = tls_context(args, "h2")
    if ctx:
        try:
            sock = ctx.wrap_socket(sock, server_hostname=host)
        except (OSError, ssl.SSLError) as e:
            count("h2", "refused", err=repr(e))
            sock.close()
            time.sleep(0.05)
            return
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    c = DrainingH2Connection(config=cfg)
    c.initiate_connection()
    sock.sendall(c.data_to_send())
    inflight = {}  # stream id -> status
    last_ok = None  # the GOAWAY's last stream id once one came
    headers = [(":method", "GET"), (":scheme", "http"), (":authority", host),
               (":path", args.path)]
    try:
        while True:
            stopping = should_stop(args, t_end)
            while last_ok is None and not stopping and len(inflight) < args.streams:
                sid = c.get_next_available_stream_id()
                c.send_headers(sid, headers, end_stream=True)
                inflight[sid] = None
            out = c.data_to_send()
            if out:
                sock.sendall(out)
            if not inflight and (last_ok is not None or stopping):
                break
            data = sock.recv(65536)
            if not data:
                break
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    inflight[ev.stream_id] = dict(ev.headers).get(":status")
                elif isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    st = inflight.pop(ev.stream_id, None)
                    count("h2", "ok" if st == "200" else "failed",
                          err=None if st == "200" else "status %s" % st)
                elif isinstance(ev, h2.events.StreamReset):
                    inflight.pop(ev.stream_id, None)
                    count("h2", "failed", err="RST_STREAM %s" % ev.error_code)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    count("h2", "goaway")
                    if ev.error_code != 0:
                        count("h2", "failed", n=len(inflight),
                              err="GOAWAY error %s" % ev.error_code)
                        inflight.clear()
                    last_ok = ev.last_stream_id
                    for sid in [s for s in inflight if s > last_ok]:
                        inflight.pop(sid)
                        count("h2", "unprocessed")
    except OSError as e:
        count("h2", "failed", n=len(inflight), err=repr(e))
        inflight.clear()
    # The connection ended under streams the server had taken.
    if inflight:
        count("h2", "failed", n=len(inflight), err="connection closed with streams open")
    sock.close()


def h2_client(args, host, port, t_end):
    while not should_stop(args, t_end):
        h2_session(args, host, port, t_end)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--h1", type=int, default=2)
    ap.add_argument("--h2", type=int, default=2)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--path", default="/")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--stop-file")
    ap.add_argument("--ready-file")
    ap.add_argument("--ca")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    port = int(port)
    t_end = time.time() + args.duration
    threads = [threading.Thread(target=h1_client, args=(args, host, port, t_end))
               for _ in range(args.h1)]
    threads += [threading.Thread(target=h2_client, args=(args, host, port, t_end))
                for _ in range(args.h2)]
    for t in threads:
        t.start()
    if args.ready_file:
        open(args.ready_file, "w").close()
    for t in threads:
        t.join()
    print(json.dumps(STATS))


if __name__ == "__main__":
    main()
