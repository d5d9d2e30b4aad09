#!/usr/bin/python3
"""Long-lived gRPC streams through the proxy: what must never cut them, and
what must find a dead backend.

Run by tests/e2e/test_grpc_streams.sh against an l7proxy whose idle
timeouts (client and cluster) are short and whose HTTP/2 PING interval and
connection-recycling limit are small, in front of
deploy/grpc/interop_server.py:

  quiet_bidi       a bidi call exchanges a message, stays quiet for several
                   idle timeouts, then exchanges another: nothing cut it
  recycling        more unary calls on one channel than the proxy's
                   http2.max_requests: all succeed (graceful GOAWAY, the
                   client reconnects), and a bidi call opened before the
                   GOAWAY goes on after it
  dead_backend     a bidi call whose backend process is stopped (SIGSTOP)
                   ends by the proxy's PING timeout with UNAVAILABLE (the
                   proxy ends a call broken between messages with a status
                   in trailers, not a reset)

Usage: stream_checks.py --target HOST:PORT --server-pid PID [--quiet S]
Output: "ok - <check>" / "not ok - <check>: <reason>", then "N passed, M
failed"; exit 0 only if all passed. Every call has a deadline.
"""

import argparse
import os
import queue
import signal
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "deploy", "grpc"))
import interop_pb  # noqa: E402

pb = interop_pb.load()
msg = pb.messages_pb2


class Fail(Exception):
    pass


class Requests:
    """A request iterator fed by hand (send / close)."""

    def __init__(self):
        self.q = queue.Queue()

    def send(self, m):
        self.q.put(m)

    def close(self):
        self.q.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        m = self.q.get(timeout=60)
        if m is None:
            raise StopIteration
        return m


def req(size):
    r = msg.StreamingOutputCallRequest()
    r.response_parameters.add(size=size)
    return r


def channel(target):
    # One connection per channel, no proxy from the environment, and no
    # client keepalive PINGs: the proxy's own timers are under test.
    return grpc.insecure_channel(target, [("grpc.enable_http_proxy", 0),
                                          ("grpc.use_local_subchannel_pool", 1)])


def quiet_bidi(a):
    with channel(a.target) as ch:
        stub = pb.test_pb2_grpc.TestServiceStub(ch)
        reqs = Requests()
        call = stub.FullDuplexCall(reqs, timeout=a.quiet + 30)
        reqs.send(req(10))
        if len(next(call).payload.body) != 10:
            raise Fail("first response has the wrong size")
        time.sleep(a.quiet)
        reqs.send(req(20))
        try:
            got = next(call)
        except grpc.RpcError as e:
            raise Fail("the quiet stream was cut after %.1fs: %s %r" %
                       (a.quiet, e.code().name, e.details()))
        if len(got.payload.body) != 20:
            raise Fail("second response has the wrong size")
        reqs.close()
        for _ in call:
            pass


def recycling(a):
    with channel(a.target) as ch:
        stub = pb.test_pb2_grpc.TestServiceStub(ch)
        reqs = Requests()
        call = stub.FullDuplexCall(reqs, timeout=60)
        reqs.send(req(1))
        next(call)
        n = 3 * a.max_requests
        for i in range(n):
            try:
                stub.UnaryCall(msg.SimpleRequest(response_size=8), timeout=10)
            except grpc.RpcError as e:
                raise Fail("unary call %d of %d failed: %s %r" % (i + 1, n, e.code().name,
                                                                 e.details()))
        reqs.send(req(2))
        try:
            if len(next(call).payload.body) != 2:
                raise Fail("bidi response after recycling has the wrong size")
        except grpc.RpcError as e:
            raise Fail("the bidi call opened before the GOAWAY was cut: %s %r" %
                       (e.code().name, e.details()))
        reqs.close()
        for _ in call:
            pass


def dead_backend(a):
    with channel(a.target) as ch:
        stub = pb.test_pb2_grpc.TestServiceStub(ch)
        reqs = Requests()
        call = stub.FullDuplexCall(reqs, timeout=60)
        reqs.send(req(1))
        next(call)
        os.kill(a.server_pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            reqs.send(req(1))
            next(call)
            raise Fail("a stopped backend answered")
        except grpc.RpcError as e:
            took = time.monotonic() - t0
            if e.code() != grpc.StatusCode.UNAVAILABLE or took > a.dead_within:
                raise Fail("the dead backend was found after %.1fs (%s %r), want "
                           "UNAVAILABLE within %.1fs" % (took, e.code().name, e.details(),
                                                         a.dead_within))
            print("# the call ended after %.1fs: %s %r" % (took, e.code().name, e.details()))
        finally:
            os.kill(a.server_pid, signal.SIGCONT)
            reqs.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--quiet", type=float, default=4.0, help="seconds of silence")
    ap.add_argument("--max-requests", type=int, default=5, help="the proxy's http2.max_requests")
    ap.add_argument("--dead-within", type=float, default=5.0,
                    help="seconds in which a stopped backend must be found")
    ap.add_argument("--checks", default="quiet_bidi,recycling,dead_backend")
    a = ap.parse_args()
    failed = 0
    names = a.checks.split(",")
    for name in names:
        try:
            globals()[name](a)
            print("ok - %s" % name, flush=True)
        except (Fail, grpc.RpcError, StopIteration, queue.Empty) as e:
            failed += 1
            why = "%s %r" % (e.code().name, e.details()) if isinstance(e, grpc.RpcError) else e
            print("not ok - %s: %s" % (name, why), flush=True)
    print("%d passed, %d failed" % (len(names) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
