#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""A control plane for lbd to pull backend sets from, in tests.

  upstream_source.py --port PORT --doc FILE [--tls CERT KEY]

GET /upstreams.json serves FILE (read again on every request) with an ETag
(a hash of the content) and answers 304 to a matching If-None-Match. What it
does instead is set with GET /_mode/NAME:
  normal    the above
  garbage   200 with a body that is not JSON
  hang      accept, read the request, never answer (until stopped, 60 s at most)
  redirect  302 to another path
  big       200 with 5 MiB of body, no Content-Length (it runs to the close)
  error     503
GET /_stats returns counts as JSON: requests, conditional (requests that
carried If-None-Match), not_modified (304s sent), ok (200s), the last SNI
(TLS) and the last User-Agent. Listens on 127.0.0.1 only; stops on SIGTERM.
"""
import argparse
import hashlib
import json
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"mode": "normal", "requests": 0, "conditional": 0, "not_modified": 0, "ok": 0,
         "sni": None, "user_agent": None}
LOCK = threading.Lock()
STOP = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    doc_path = None

    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/_mode/"):
            with LOCK:
                STATE["mode"] = self.path[len("/_mode/"):]
            return self.reply(200, b"ok\n")
        if self.path == "/_stats":
            with LOCK:
                body = json.dumps(STATE).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        if self.path != "/upstreams.json":
            return self.reply(404)
        inm = self.headers.get("If-None-Match")
        with LOCK:
            STATE["requests"] += 1
            STATE["conditional"] += inm is not None
            STATE["user_agent"] = self.headers.get("User-Agent")
            mode = STATE["mode"]
        if mode == "hang":
            STOP.wait(60)
            return
        if mode == "garbage":
            return self.reply(200, b"<html>this is not JSON {", [("ETag", '"garbage"')])
        if mode == "redirect":
            return self.reply(302, b"", [("Location", "/elsewhere.json")])
        if mode == "big":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(80):
                    self.wfile.write(b" " * 65536)
            except OSError:  # the client stopped reading at its cap
                pass
            return
        if mode == "error":
            return self.reply(503, b"busy\n")
        with open(self.doc_path, "rb") as f:
            body = f.read()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
        if inm == etag:
            with LOCK:
                STATE["not_modified"] += 1
            return self.reply(304, b"", [("ETag", etag)])
        with LOCK:
            STATE["ok"] += 1
        self.reply(200, body, [("Content-Type", "application/json"), ("ETag", etag)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()
    Handler.doc_path = a.doc
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])

        def on_sni(sock, name, c):
            with LOCK:
                STATE["sni"] = name

        ctx.sni_callback = on_sni
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)

    def stop(*_):
        STOP.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print("listening on 127.0.0.1:%d" % a.port, flush=True)
    srv.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
