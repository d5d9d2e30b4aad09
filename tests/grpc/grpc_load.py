#!/usr/bin/python3
"""gRPC traffic through the proxy while it drains or hands over
(tests/e2e/test_drain.sh).

    grpc_load.py TARGET [--duration S] [--threads N] [--stream-count K]
                 [--stream-interval-ms MS] [--ca CA.pem] [--ready-file F]

--ca: TLS, verifying the proxy against CA.pem (else plaintext h2c).

N threads make UnaryCall after UnaryCall for S seconds, each on its own
channel (its own connection); one more runs a single StreamingOutputCall
of K responses, MS apart, started at once. Prints JSON:
{"unary_ok", "unary_failed", "errors", "stream_responses", "stream_status"}.

A unary call that fails with UNAVAILABLE before the proxy took it (no
connection) counts as "unary_unavailable", not failed: after SIGTERM a
proxy refuses connections by design. Any other failure is "failed".
"""
import argparse
import json
import os
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "deploy", "grpc"))
import interop_pb  # noqa: E402

pb = interop_pb.load()
msg = pb.messages_pb2
LOCK = threading.Lock()
OUT = {"unary_ok": 0, "unary_failed": 0, "unary_unavailable": 0, "errors": [],
       "stream_responses": 0, "stream_status": None}


CA = None


def channel(target):
    opts = [("grpc.enable_http_proxy", 0), ("grpc.use_local_subchannel_pool", 1)]
    if CA:
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=CA),
                                   opts)
    return grpc.insecure_channel(target, opts)


def unary(target, t_end):
    ch = channel(target)
    stub = pb.test_pb2_grpc.TestServiceStub(ch)
    while time.time() < t_end:
        try:
            stub.UnaryCall(msg.SimpleRequest(response_size=64), timeout=5)
            key = "unary_ok"
        except grpc.RpcError as e:
            key = "unary_failed"
            if e.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (e.details() or "").lower():
                key = "unary_unavailable"
                time.sleep(0.05)
            with LOCK:
                if key == "unary_failed" and len(OUT["errors"]) < 10:
                    OUT["errors"].append("%s: %s" % (e.code(), e.details()))
        with LOCK:
            OUT[key] += 1
    ch.close()


def stream(target, k, interval_ms):
    ch = channel(target)
    stub = pb.test_pb2_grpc.TestServiceStub(ch)
    req = msg.StreamingOutputCallRequest(response_parameters=[
        msg.ResponseParameters(size=16, interval_us=interval_ms * 1000) for _ in range(k)])
    try:
        for _ in stub.StreamingOutputCall(req, timeout=60):
            OUT["stream_responses"] += 1
        OUT["stream_status"] = "OK"
    except grpc.RpcError as e:
        OUT["stream_status"] = "%s: %s" % (e.code(), e.details())
    ch.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stream-count", type=int, default=0)
    ap.add_argument("--stream-interval-ms", type=int, default=500)
    ap.add_argument("--ready-file")
    ap.add_argument("--ca")
    args = ap.parse_args()
    global CA
    if args.ca:
        CA = open(args.ca, "rb").read()
    t_end = time.time() + args.duration
    ts = [threading.Thread(target=unary, args=(args.target, t_end)) for _ in range(args.threads)]
    if args.stream_count:
        ts.append(threading.Thread(target=stream, args=(args.target, args.stream_count,
                                                        args.stream_interval_ms)))
    for t in ts:
        t.start()
    if args.ready_file:
        open(args.ready_file, "w").close()
    for t in ts:
        t.join()
    print(json.dumps(OUT))


if __name__ == "__main__":
    main()
