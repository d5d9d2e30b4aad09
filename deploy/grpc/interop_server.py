#!/usr/bin/python3
"""gRPC interop test server: a plaintext (h2c) backend for portico's proxy tests.

Why: end-to-end tests put l7proxy between tests/grpc/interop_client.py and
this server, so every interop case (unary, all streaming shapes, cancels,
deadlines, status and metadata echo) crosses the proxy's HTTP/2 + gRPC path.

What it serves, following the gRPC project's interop test descriptions:
  grpc.testing.TestService
    EmptyCall, UnaryCall (response_size, response_status echo,
    fill_server_id), CacheableUnaryCall (timestamp payload + cache-control),
    StreamingOutputCall, StreamingInputCall (sums payload sizes),
    FullDuplexCall (answers each request as it arrives), HalfDuplexCall
    (answers after half-close), UnimplementedCall (UNIMPLEMENTED).
    ResponseParameters.interval_us is slept before each response;
    response_compressed / ResponseParameters.compressed turn on gzip.
    Metadata echo: "x-grpc-test-echo-initial" comes back in the initial
    metadata, "x-grpc-test-echo-trailing-bin" in the trailing metadata.
  grpc.health.v1.Health
    Check: SERVING for "" and "grpc.testing.TestService", else NOT_FOUND.
    Watch: the current status, then NOT_SERVING when the server shuts down.
  grpc.testing.UnimplementedService is deliberately not registered.

Run (a port of 0 picks a free one; the real port is printed):
  deploy/grpc/interop_server.py --listen 127.0.0.1:50051 --listen '[::1]:50051'

Prints one "listening on ..." line to stderr and nothing else unless -v.

--events FILE appends one line per call start and per cancelled call:
  start <Method> tag=<x-portico-tag> remaining_ms=<deadline left|none>
  cancelled <Method> tag=<x-portico-tag>
so a test through the proxy can see the deadline the backend was given
(propagated and reduced) and that a cancel reached the backend.
SIGTERM / SIGINT: Watch streams get NOT_SERVING, in-flight calls get
--grace seconds (then are cancelled), exit status 0 within about --grace s.
Stubs come from deploy/grpc/interop_pb.py (generated at first use).
"""

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_pb  # noqa: E402

pb = interop_pb.load()
msg = pb.messages_pb2
log = logging.getLogger("interop_server")

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
CODES = {c.value[0]: c for c in grpc.StatusCode}
stopping = threading.Event()


def echo_metadata(context, extra_initial=()):
    """Send back the echo keys; must run before the first response."""
    initial, trailing = list(extra_initial), []
    for key, value in context.invocation_metadata():
        if key == ECHO_INITIAL:
            initial.append((key, value))
        elif key == ECHO_TRAILING:
            trailing.append((key, value))
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def check_request(request, context):
    """Echo Status and request validation; aborts (raises) if asked to."""
    if request.response_type != msg.COMPRESSABLE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")
    if request.HasField("response_status") and request.response_status.code != 0:
        st = request.response_status
        context.abort(CODES.get(st.code, grpc.StatusCode.UNKNOWN), st.message)


def payload(size, context):
    if size < 0:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "negative size")
    return msg.Payload(type=msg.COMPRESSABLE, body=bytes(size))


def stream_responses(requests, context):
    """Shared body of the streaming-output methods: one response per
    ResponseParameters, each after its interval_us."""
    gzip_on = False
    for request in requests:
        check_request(request, context)
        for params in request.response_parameters:
            if params.interval_us > 0 and stopping.wait(params.interval_us / 1e6):
                context.abort(grpc.StatusCode.UNAVAILABLE, "server shutting down")
            if params.compressed.value and not gzip_on:
                context.set_compression(grpc.Compression.Gzip)  # only before 1st msg
                gzip_on = True
            elif gzip_on and not params.compressed.value:
                context.disable_next_message_compression()
            yield msg.StreamingOutputCallResponse(payload=payload(params.size, context))


events = None
events_lock = threading.Lock()


def record(line):
    if events:
        with events_lock:
            events.write(line + "\n")
            events.flush()


def track(context, method, streamed=False):
    """--events: log the call's start (with the deadline it arrived with)
    and, if it ends without finishing, that it was cancelled. Returns the
    function to call when the handler finishes; a handler whose request
    stream simply stopped because the client cancelled also ends up there,
    so it checks is_active() rather than trusting that it got to the end
    (for a call with a request stream, `streamed`, that check waits up to
    0.2 s)."""
    if not events:
        return lambda: None
    tag = dict(context.invocation_metadata()).get("x-portico-tag", "-")
    left = context.time_remaining()
    record("start %s tag=%s remaining_ms=%s" % (
        method, tag, "none" if left is None else int(left * 1000)))
    lock, state = threading.Lock(), {"over": False}

    def over(cancelled):
        with lock:
            if state["over"]:
                return
            state["over"] = True
        if cancelled:
            record("cancelled %s tag=%s" % (method, tag))

    def handler_done():
        # A client's cancel can end the request stream (as if half-closed)
        # a moment before gRPC marks the call cancelled: the two come from
        # separate completion events.  A cancelled call turns inactive
        # within milliseconds; a live one stays active until we return.
        end = time.monotonic() + (0.2 if streamed else 0)
        while context.is_active() and time.monotonic() < end:
            time.sleep(0.01)
        over(not context.is_active())

    context.add_callback(lambda: over(True))
    return handler_done


class TestService(pb.test_pb2_grpc.TestServiceServicer):
    def __init__(self, server_id):
        self.server_id = server_id

    def EmptyCall(self, request, context):
        finished = track(context, "EmptyCall")
        echo_metadata(context)
        finished()
        return pb.empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        check_request(request, context)
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        resp = msg.SimpleResponse(payload=payload(request.response_size, context))
        if request.fill_server_id:
            resp.server_id = self.server_id
            resp.hostname = socket.gethostname()
        return resp

    def CacheableUnaryCall(self, request, context):
        echo_metadata(context, [("cache-control", "max-age=60, public")])
        body = str(time.time_ns()).encode()
        return msg.SimpleResponse(payload=msg.Payload(type=msg.COMPRESSABLE, body=body))

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        yield from stream_responses([request], context)

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = sum(len(r.payload.body) for r in request_iterator)
        return msg.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        finished = track(context, "FullDuplexCall", streamed=True)
        echo_metadata(context)
        yield from stream_responses(request_iterator, context)
        finished()

    def HalfDuplexCall(self, request_iterator, context):
        finished = track(context, "HalfDuplexCall", streamed=True)
        echo_metadata(context)
        yield from stream_responses(list(request_iterator), context)
        finished()

    def UnimplementedCall(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "UnimplementedCall is not implemented")


class Health(pb.health_pb2_grpc.HealthServicer):
    H = pb.health_pb2.HealthCheckResponse
    KNOWN = ("", "grpc.testing.TestService")

    def status(self, service):
        if service not in self.KNOWN:
            return None
        return self.H.NOT_SERVING if stopping.is_set() else self.H.SERVING

    def Check(self, request, context):
        status = self.status(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)
        return self.H(status=status)

    def Watch(self, request, context):
        status = self.status(request.service)
        yield self.H(status=self.H.SERVICE_UNKNOWN if status is None else status)
        while context.is_active() and not stopping.wait(0.5):
            pass
        if status is not None and context.is_active():
            yield self.H(status=self.H.NOT_SERVING)


class LogCalls(grpc.ServerInterceptor):
    """-v only: one debug line per call."""

    def intercept_service(self, continuation, details):
        md = " ".join("%s=%r" % (k, v) for k, v in details.invocation_metadata or ())
        log.debug("call %s %s", details.method, md)
        return continuation(details)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", action="append", required=True, metavar="ADDR:PORT",
                    help="address to serve h2c on, e.g. 127.0.0.1:50051 or [::1]:50051 "
                         "(repeatable; port 0 = pick a free one)")
    ap.add_argument("--threads", type=int, default=16, help="handler threads (default 16)")
    ap.add_argument("--grace", type=float, default=2.0,
                    help="seconds in-flight calls get on SIGTERM (default 2)")
    ap.add_argument("--server-id", help="SimpleResponse.server_id (default host:pid)")
    ap.add_argument("--permit-pings-ms", type=int, metavar="MS",
                    help="accept HTTP/2 PINGs this often without data (gRPC's default is "
                         "one per 5 minutes; tests with short proxy PING intervals lower it)")
    ap.add_argument("--events", metavar="FILE",
                    help="append call starts (with their deadline) and cancels to FILE")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = ap.parse_args()
    global events
    if args.events:
        events = open(args.events, "a")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="interop_server: %(message)s")

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.threads),
        interceptors=[LogCalls()] if args.verbose else [],
        # grpcio sets SO_REUSEPORT by default: a stale server on the same
        # port would silently share connections with us.  Fail instead.
        options=[("grpc.so_reuseport", 0)] + (
            [("grpc.http2.min_ping_interval_without_data_ms", args.permit_pings_ms),
             ("grpc.http2.max_ping_strikes", 0)] if args.permit_pings_ms else []))
    pb.test_pb2_grpc.add_TestServiceServicer_to_server(
        TestService(args.server_id or "%s:%d" % (socket.gethostname(), os.getpid())), server)
    pb.health_pb2_grpc.add_HealthServicer_to_server(Health(), server)

    bound = []
    for addr in args.listen:
        host = addr.rpartition(":")[0]
        try:
            port = server.add_insecure_port(addr) if host else 0
        except RuntimeError:  # newer grpcio raises, 1.51 returns 0
            port = 0
        if port == 0:
            sys.exit("interop_server: cannot listen on %s" % addr)
        bound.append("%s:%d" % (host, port))

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    server.start()
    print("interop_server: listening on " + " ".join(bound), file=sys.stderr, flush=True)
    while not stopping.wait(3600):
        pass
    log.debug("stopping (grace %.1fs)", args.grace)
    server.stop(args.grace).wait()
    # Every call is finished or cancelled now.  A handler thread still stuck
    # in user code would make the interpreter's exit-time join of the thread
    # pool hang, so leave without it.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
