#!/usr/bin/python3
"""gRPC interop test client for portico's end-to-end tests.

Why: runs the gRPC project's interop cases (doc/interop-test-descriptions.md
in grpc/grpc) against a target, normally l7proxy fronting
deploy/grpc/interop_server.py (or any other interop server), with real
assertions on sizes, ordering, status codes/messages and metadata.

Cases: empty_unary large_unary client_streaming server_streaming ping_pong
empty_stream cancel_after_begin cancel_after_first_response
timeout_on_sleeping_server status_code_and_message special_status_message
custom_metadata unimplemented_method unimplemented_service health
("health": grpc.health.v1 Check of "" is SERVING, of an unknown name is
NOT_FOUND).

Run:
  tests/grpc/interop_client.py --target 127.0.0.1:50051
  tests/grpc/interop_client.py --target '[::1]:8443' --tls --ca ca.pem \\
      --authority grpc.example.test --cases large_unary,ping_pong
  tests/grpc/interop_client.py --target 127.0.0.1:8080 --expect-code UNAVAILABLE

Output is TAP-like: "ok - <case>" / "not ok - <case>: <reason>", then
"N passed, M failed".  Exit status 0 only if every requested case passed
(2 on usage errors).  Every RPC carries a deadline of --timeout seconds and
a watchdog kills the process if a case still overruns, so nothing hangs.

Proxy cases (not interop cases; only run when named in --cases, and they
need --events, the file deploy/grpc/interop_server.py --events writes):
  proxy_deadline_propagated  the backend gets the call's deadline, reduced
  proxy_default_deadline     HalfDuplexCall with no deadline ends with
                             DEADLINE_EXCEEDED by the route's default
                             (1.5 s in popbox) and the backend is cancelled
  proxy_max_deadline         a 20 s deadline is capped by the route (3 s)
  proxy_cancel_reaches_backend  a client's cancel of a bidi call reaches
                             the backend

--expect-code CODE makes one EmptyCall and passes only if it fails with that
status code (e.g. "backend stopped -> UNAVAILABLE, not a hang"); the line
shows the code, details and elapsed time it got.

Each case uses its own channel and (local subchannel pool) its own HTTP/2
connection, so one broken case cannot poison the next.  HTTP proxies from the
environment are ignored.  --authority sets the TLS name
(grpc.ssl_target_name_override, which also becomes :authority); without TLS
it sets :authority (grpc.default_authority).  --ca implies --tls.
"""

import argparse
import faulthandler
import os
import queue
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "deploy", "grpc"))
import interop_pb  # noqa: E402

pb = interop_pb.load()
msg = pb.messages_pb2
Empty = pb.empty_pb2.Empty
SC = grpc.StatusCode

ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class Fail(Exception):
    pass


def check(cond, reason):
    if not cond:
        raise Fail(reason)


def zeros(n):
    return msg.Payload(type=msg.COMPRESSABLE, body=bytes(n))


def check_payload(payload, size, what="response"):
    check(len(payload.body) == size,
          "%s payload is %d bytes, want %d" % (what, len(payload.body), size))
    check(payload.body == bytes(size), "%s payload is not all zeros" % what)


def stream_req(size=None, body=0, **kw):
    params = [msg.ResponseParameters(size=size)] if size is not None else []
    return msg.StreamingOutputCallRequest(response_parameters=params,
                                          payload=zeros(body), **kw)


def expect_error(call, code, details=None):
    """Run call(); it must fail with `code` (and exactly `details` if given)."""
    try:
        call()
    except grpc.RpcError as e:
        check(e.code() == code, "got %s (%r), want %s" % (e.code().name, e.details(), code.name))
        check(details is None or e.details() == details,
              "details %r, want %r" % (e.details(), details))
        return
    raise Fail("call succeeded, want %s" % code.name)


def check_md(md, key, want, where):
    got = [v for k, v in (md or ()) if k == key]
    check(got == [want], "%s metadata %s = %r, want [%r]" % (where, key, got, want))


class Requests:
    """Request iterator fed by hand: send() queues a message, close()
    half-closes.  Also ends by itself after `limit` s so gRPC's sending
    thread can never block forever."""

    _END = object()

    def __init__(self, limit):
        self.q, self.limit = queue.Queue(), limit

    def send(self, m):
        self.q.put(m)

    def close(self):
        self.q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = self.q.get(timeout=self.limit)
        except queue.Empty:
            raise StopIteration
        if item is self._END:
            self.q.put(self._END)  # stay ended
            raise StopIteration
        return item


# ---- cases: each gets ctx (stubs + timeout) and raises Fail on a mismatch ----

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@case
def empty_unary(c):
    check(isinstance(c.test.EmptyCall(Empty(), timeout=c.timeout), Empty), "no Empty response")


@case
def large_unary(c):
    req = msg.SimpleRequest(response_type=msg.COMPRESSABLE, response_size=314159,
                            payload=zeros(271828))
    check_payload(c.test.UnaryCall(req, timeout=c.timeout).payload, 314159)


@case
def client_streaming(c):
    reqs = [msg.StreamingInputCallRequest(payload=zeros(n)) for n in (27182, 8, 1828, 45904)]
    resp = c.test.StreamingInputCall(iter(reqs), timeout=c.timeout)
    check(resp.aggregated_payload_size == 74922,
          "aggregated_payload_size %d, want 74922" % resp.aggregated_payload_size)


@case
def server_streaming(c):
    sizes = [31415, 9, 2653, 58979]
    req = msg.StreamingOutputCallRequest(
        response_type=msg.COMPRESSABLE,
        response_parameters=[msg.ResponseParameters(size=n) for n in sizes])
    got = list(c.test.StreamingOutputCall(req, timeout=c.timeout))
    check([len(r.payload.body) for r in got] == sizes,
          "response sizes %s, want %s" % ([len(r.payload.body) for r in got], sizes))
    for r, n in zip(got, sizes):
        check_payload(r.payload, n)


@case
def ping_pong(c):
    reqs = Requests(c.timeout)
    call = c.test.FullDuplexCall(reqs, timeout=c.timeout)
    try:
        for i, (size, body) in enumerate([(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]):
            reqs.send(stream_req(size, body))
            check_payload(next(call).payload, size, "response %d" % (i + 1))
        reqs.close()
        extra = list(call)
        check(not extra, "%d responses after half-close, want none" % len(extra))
        check(call.code() == SC.OK, "status %s, want OK" % call.code().name)
    finally:
        reqs.close()
        call.cancel()


@case
def empty_stream(c):
    call = c.test.FullDuplexCall(iter(()), timeout=c.timeout)
    got = list(call)
    check(not got, "%d responses, want none" % len(got))
    check(call.code() == SC.OK, "status %s, want OK" % call.code().name)


@case
def cancel_after_begin(c):
    reqs = Requests(c.timeout)
    fut = c.test.StreamingInputCall.future(reqs, timeout=c.timeout)
    try:
        fut.cancel()
        check(fut.code() == SC.CANCELLED, "status %s, want CANCELLED" % fut.code().name)
    finally:
        reqs.close()


@case
def cancel_after_first_response(c):
    reqs = Requests(c.timeout)
    call = c.test.FullDuplexCall(reqs, timeout=c.timeout)
    try:
        reqs.send(stream_req(31415, 27182))
        check_payload(next(call).payload, 31415)
        call.cancel()
        check(call.code() == SC.CANCELLED, "status %s, want CANCELLED" % call.code().name)
    finally:
        reqs.close()


@case
def timeout_on_sleeping_server(c):
    reqs = Requests(c.timeout)
    reqs.send(stream_req(body=27182))
    try:
        expect_error(lambda: list(c.test.FullDuplexCall(reqs, timeout=0.001)),
                     SC.DEADLINE_EXCEEDED)
    finally:
        reqs.close()


@case
def status_code_and_message(c):
    st = msg.EchoStatus(code=2, message="test status message")
    expect_error(lambda: c.test.UnaryCall(msg.SimpleRequest(response_status=st),
                                          timeout=c.timeout), SC.UNKNOWN, st.message)
    expect_error(lambda: list(c.test.FullDuplexCall(
        iter([msg.StreamingOutputCallRequest(response_status=st)]), timeout=c.timeout)),
        SC.UNKNOWN, st.message)


@case
def special_status_message(c):
    st = msg.EchoStatus(code=2, message=SPECIAL_MESSAGE)
    expect_error(lambda: c.test.UnaryCall(msg.SimpleRequest(response_status=st),
                                          timeout=c.timeout), SC.UNKNOWN, SPECIAL_MESSAGE)


@case
def custom_metadata(c):
    md = (ECHO_INITIAL, ECHO_TRAILING)
    req = msg.SimpleRequest(response_type=msg.COMPRESSABLE, response_size=314159,
                            payload=zeros(271828))
    resp, call = c.test.UnaryCall.with_call(req, metadata=md, timeout=c.timeout)
    check_payload(resp.payload, 314159)
    check_md(call.initial_metadata(), *ECHO_INITIAL, "unary initial")
    check_md(call.trailing_metadata(), *ECHO_TRAILING, "unary trailing")

    call = c.test.FullDuplexCall(iter([stream_req(314159, 271828)]), metadata=md,
                                 timeout=c.timeout)
    got = list(call)
    check(len(got) == 1, "%d streamed responses, want 1" % len(got))
    check_payload(got[0].payload, 314159)
    check_md(call.initial_metadata(), *ECHO_INITIAL, "bidi initial")
    check_md(call.trailing_metadata(), *ECHO_TRAILING, "bidi trailing")


@case
def unimplemented_method(c):
    expect_error(lambda: c.test.UnimplementedCall(Empty(), timeout=c.timeout),
                 SC.UNIMPLEMENTED)


@case
def unimplemented_service(c):
    stub = pb.test_pb2_grpc.UnimplementedServiceStub(c.channel)
    expect_error(lambda: stub.UnimplementedCall(Empty(), timeout=c.timeout), SC.UNIMPLEMENTED)


@case
def health(c):
    h = pb.health_pb2
    stub = pb.health_pb2_grpc.HealthStub(c.channel)
    resp = stub.Check(h.HealthCheckRequest(service=""), timeout=c.timeout)
    check(resp.status == h.HealthCheckResponse.SERVING,
          "status %s, want SERVING" % h.HealthCheckResponse.ServingStatus.Name(resp.status))
    expect_error(lambda: stub.Check(h.HealthCheckRequest(service="no.such.Service"),
                                    timeout=c.timeout), SC.NOT_FOUND)


# ---- driver ----

class Ctx:
    def __init__(self, args):
        opts = [("grpc.enable_http_proxy", 0), ("grpc.use_local_subchannel_pool", 1)]
        if args.tls:
            ca = open(args.ca, "rb").read() if args.ca else None
            if args.authority:
                opts.append(("grpc.ssl_target_name_override", args.authority))
            self.channel = grpc.secure_channel(
                args.target, grpc.ssl_channel_credentials(root_certificates=ca), opts)
        else:
            if args.authority:
                opts.append(("grpc.default_authority", args.authority))
            self.channel = grpc.insecure_channel(args.target, opts)
        self.test = pb.test_pb2_grpc.TestServiceStub(self.channel)
        self.timeout = args.timeout
        self.events = args.events


def run_case(name, args):
    """Returns None on success, else the failure reason."""
    faulthandler.dump_traceback_later(args.timeout * 3 + 5, exit=True)  # hang guard
    ctx = Ctx(args)
    try:
        if args.expect_code:
            return expect_code(ctx, args.expect_code)
        (CASES.get(name) or PROXY_CASES[name])(ctx)
    except Fail as e:
        return str(e)
    except grpc.RpcError as e:
        return "RPC failed: %s: %r" % (e.code().name, e.details())
    except Exception as e:  # a bug in the case or a bad response: still a failure
        return "%s: %s" % (type(e).__name__, e)
    finally:
        ctx.channel.close()
        faulthandler.cancel_dump_traceback_later()


# ---- proxy cases: the proxy's own gRPC rules, checked at the backend ----

PROXY_CASES = {}


def proxy_case(fn):
    PROXY_CASES[fn.__name__] = fn
    return fn


def tag_md(name):
    return [("x-portico-tag", "%s-%d-%d" % (name, os.getpid(), time.monotonic_ns()))]


def wait_event(c, prefix, tag, within):
    """The first events line starting with prefix for tag, waiting up to
    `within` seconds for it to appear."""
    end = time.monotonic() + within
    while True:
        with open(c.events) as f:
            for line in f:
                words = line.split()
                if line.startswith(prefix) and "tag=" + tag in words:
                    return words
        if time.monotonic() > end:
            raise Fail("no %r event for %s within %.1fs" % (prefix, tag, within))
        time.sleep(0.05)


@proxy_case
def proxy_deadline_propagated(c):
    md = tag_md("prop")
    c.test.EmptyCall(Empty(), timeout=5.0, metadata=md)
    words = wait_event(c, "start EmptyCall", md[0][1], 2)
    left = words[-1].split("=")[1]
    check(left != "none", "the backend got no deadline")
    check(1000 < int(left) <= 5000, "the backend got %s ms left of a 5 s deadline" % left)


def half_duplex_sleeping(c, timeout, name):
    """A HalfDuplexCall whose answer comes after 10 s: returns (code,
    elapsed s, tag)."""
    md = tag_md(name)
    req = stream_req()
    req.response_parameters.add(size=1, interval_us=10_000_000)
    t0 = time.monotonic()
    try:
        for _ in c.test.HalfDuplexCall(iter([req]), timeout=timeout, metadata=md):
            pass
        code = SC.OK
    except grpc.RpcError as e:
        code = e.code()
    return code, time.monotonic() - t0, md[0][1]


@proxy_case
def proxy_default_deadline(c):
    code, took, tag = half_duplex_sleeping(c, None, "default")
    check(code == SC.DEADLINE_EXCEEDED, "got %s, want DEADLINE_EXCEEDED" % code.name)
    check(0.8 < took < 3.0, "ended after %.2fs, want the route's 1.5 s default" % took)
    wait_event(c, "cancelled HalfDuplexCall", tag, 2)


@proxy_case
def proxy_max_deadline(c):
    code, took, tag = half_duplex_sleeping(c, 20, "max")
    check(code == SC.DEADLINE_EXCEEDED, "got %s, want DEADLINE_EXCEEDED" % code.name)
    check(2.0 < took < 6.0, "ended after %.2fs, want the route's 3 s maximum" % took)
    words = wait_event(c, "start HalfDuplexCall", tag, 1)
    left = words[-1].split("=")[1]
    check(left != "none" and int(left) <= 3000,
          "the backend was given %s ms, more than the route's maximum" % left)
    wait_event(c, "cancelled HalfDuplexCall", tag, 2)


@proxy_case
def proxy_cancel_reaches_backend(c):
    md = tag_md("cancel")
    reqs = Requests(c.timeout)
    call = c.test.FullDuplexCall(reqs, timeout=c.timeout, metadata=md)
    reqs.send(stream_req(size=10))
    next(call)
    call.cancel()
    reqs.close()
    wait_event(c, "cancelled FullDuplexCall", md[0][1], 3)


def expect_code(c, want):
    t0 = time.monotonic()
    try:
        c.test.EmptyCall(Empty(), timeout=c.timeout)
        code, details = SC.OK, ""
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
    got = "got %s %r after %.3fs" % (code.name, details, time.monotonic() - t0)
    print("# " + got, flush=True)
    return None if code == want else got + ", want " + want.name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="cases: " + " ".join(CASES) +
                                 "; proxy cases: " + " ".join(PROXY_CASES))
    ap.add_argument("--target", required=True, help="HOST:PORT, [v6addr]:PORT")
    ap.add_argument("--tls", action="store_true", help="TLS instead of plaintext h2c")
    ap.add_argument("--ca", help="PEM file of trusted roots (implies --tls)")
    ap.add_argument("--authority", help="TLS server name / :authority override")
    ap.add_argument("--cases", help="comma-separated cases (default: all)")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-RPC deadline, s")
    ap.add_argument("--events", help="the server's --events file (proxy_* cases)")
    ap.add_argument("--expect-code", "--expect-status", metavar="CODE_NAME",
                    help="one EmptyCall that must fail with this status code")
    args = ap.parse_args()
    args.tls = args.tls or bool(args.ca)

    names = args.cases.split(",") if args.cases else list(CASES)
    bad = [n for n in names if n not in CASES and n not in PROXY_CASES]
    if bad:
        ap.error("unknown case(s): %s" % ",".join(bad))
    if any(n in PROXY_CASES for n in names) and not args.events:
        ap.error("proxy_* cases need --events (the server's events file)")
    if args.expect_code:
        try:
            args.expect_code = SC[args.expect_code.upper()]
        except KeyError:
            ap.error("unknown status code %s" % args.expect_code)
        if names not in (["empty_unary"], list(CASES)):
            ap.error("--expect-code runs one EmptyCall; --cases must be empty_unary")
        names = ["expect_code_" + args.expect_code.name]

    failed = 0
    for name in names:
        reason = run_case(name, args)
        if reason is None:
            print("ok - %s" % name, flush=True)
        else:
            failed += 1
            print("not ok - %s: %s" % (name, reason.replace("\n", "\\n")), flush=True)
    print("%d passed, %d failed" % (len(names) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
