#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Helpers of tests/e2e/test_active_health.sh (l7proxy active health checks).

    active_health.py grpc-server --listen 127.0.0.1:50061 \\
        --status-file /tmp/x/g1.status --events /tmp/x/g1.calls
        A gRPC backend: grpc.health.v1.Health/Check answers SERVING for ""
        and "grpc.testing.TestService" (NOT_FOUND for other names), or the
        status named in --status-file while that file exists ("NOT_SERVING");
        grpc.testing.TestService/EmptyCall appends its arrival time (Unix
        seconds) to --events. SIGTERM: a graceful stop (1 s of grace).

    active_health.py grpc-client --target 127.0.0.1:18280 --threads 4 \\
        --stop-file stop --out result.json
        EmptyCall in a loop from each thread (a 2 s deadline per call) until
        --stop-file exists, SIGTERM/SIGINT or --max-seconds; then writes
        {calls, ok, failed, codes: {CODE: n}, first_failures} to --out.

    active_health.py wait --sock proxy.sock --cluster web \\
        --backend 127.0.0.1:18181 --state down --since-ms T --timeout-ms N
        Polls GET /v1/clusters/CLUSTER every 20 ms until the backend's
        active_health.state is --state; prints the ms since --since-ms (a
        Unix time in ms, e.g. when the backend was stopped) and the
        backend's active_health as JSON. Exit 1 on timeout.

    active_health.py show --sock proxy.sock --cluster web
        Prints the cluster's JSON (for the test's log).

Stubs come from deploy/grpc/interop_pb.py (PORTICO_GRPC_STUBS_DIR caches).
"""

import argparse
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
from concurrent import futures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stubs():
    sys.path.insert(0, os.path.join(REPO, "deploy", "grpc"))
    import interop_pb  # noqa: E402

    return interop_pb.load()


# --- gRPC backend ---------------------------------------------------------------


def grpc_server(args):
    import grpc

    pb = stubs()
    h = pb.health_pb2
    events = open(args.events, "a", buffering=1)
    lock = threading.Lock()

    class Test(pb.test_pb2_grpc.TestServiceServicer):
        def EmptyCall(self, request, context):
            with lock:
                events.write("%.3f\n" % time.time())
            return pb.empty_pb2.Empty()

    class Health(pb.health_pb2_grpc.HealthServicer):
        def Check(self, request, context):
            if request.service not in ("", "grpc.testing.TestService"):
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
            try:
                with open(args.status_file) as f:
                    name = f.read().strip() or "NOT_SERVING"
            except FileNotFoundError:
                name = "SERVING"
            return h.HealthCheckResponse(status=h.HealthCheckResponse.ServingStatus.Value(name))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb.test_pb2_grpc.add_TestServiceServicer_to_server(Test(), server)
    pb.health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    if server.add_insecure_port(args.listen) == 0:
        sys.exit("cannot listen on %s" % args.listen)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("listening on %s" % args.listen, file=sys.stderr, flush=True)
    while not done.wait(0.2):
        pass
    server.stop(1).wait()


# --- gRPC load ---------------------------------------------------------------------


def grpc_client(args):
    import grpc

    pb = stubs()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lock = threading.Lock()
    res = {"calls": 0, "ok": 0, "failed": 0, "codes": {}, "first_failures": []}

    def run():
        # One channel per thread: one HTTP/2 connection each to the proxy.
        ch = grpc.insecure_channel(args.target)
        stub = pb.test_pb2_grpc.TestServiceStub(ch)
        while not stop.is_set():
            try:
                stub.EmptyCall(pb.empty_pb2.Empty(), timeout=2)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
                detail = e.details()
            with lock:
                res["calls"] += 1
                res["codes"][code] = res["codes"].get(code, 0) + 1
                if code == "OK":
                    res["ok"] += 1
                else:
                    res["failed"] += 1
                    if len(res["first_failures"]) < 10:
                        res["first_failures"].append("%.3f %s %s" % (time.time(), code, detail))
        ch.close()

    threads = [threading.Thread(target=run) for _ in range(args.threads)]
    for t in threads:
        t.start()
    end = time.monotonic() + args.max_seconds
    while not stop.wait(0.1) and time.monotonic() < end:
        if args.stop_file and os.path.exists(args.stop_file):
            break
    stop.set()
    for t in threads:
        t.join()
    with open(args.out, "w") as f:
        json.dump(res, f)


# --- the proxy's API ----------------------------------------------------------------


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("admin", timeout=2)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(2)
        self.sock.connect(self.path)


def cluster(sock, name):
    c = UnixHTTP(sock)
    try:
        c.request("GET", "/v1/clusters/" + name)
        return json.loads(c.getresponse().read())
    finally:
        c.close()


def backend(doc, addr):
    for b in doc["backends"]:
        if b["address"] == addr:
            return b
    return None


def wait(args):
    end = time.time() + args.timeout_ms / 1000.0
    b = None
    while True:
        try:
            b = backend(cluster(args.sock, args.cluster), args.backend)
        except (OSError, ValueError, http.client.HTTPException):
            b = None
        now = time.time()
        if b and b["active_health"]["state"] == args.state:
            print("%d %s" % (now * 1000 - args.since_ms, json.dumps(b["active_health"])))
            return 0
        if now > end:
            print("%d %s" % (now * 1000 - args.since_ms,
                             json.dumps(b["active_health"] if b else None)))
            return 1
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("grpc-server")
    s.add_argument("--listen", required=True)
    s.add_argument("--status-file", required=True)
    s.add_argument("--events", required=True)
    c = sub.add_parser("grpc-client")
    c.add_argument("--target", required=True)
    c.add_argument("--threads", type=int, default=4)
    c.add_argument("--max-seconds", type=float, default=60)
    c.add_argument("--stop-file")
    c.add_argument("--out", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--sock", required=True)
    w.add_argument("--cluster", required=True)
    w.add_argument("--backend", required=True)
    w.add_argument("--state", required=True, choices=["up", "down", "unchecked"])
    w.add_argument("--since-ms", type=float, required=True)
    w.add_argument("--timeout-ms", type=float, required=True)
    sh = sub.add_parser("show")
    sh.add_argument("--sock", required=True)
    sh.add_argument("--cluster", required=True)
    args = ap.parse_args()
    if args.cmd == "grpc-server":
        grpc_server(args)
    elif args.cmd == "grpc-client":
        grpc_client(args)
    elif args.cmd == "wait":
        sys.exit(wait(args))
    else:
        print(json.dumps(cluster(args.sock, args.cluster)))


if __name__ == "__main__":
    main()
