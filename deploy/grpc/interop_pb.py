#!/usr/bin/python3
"""Runtime-generated Python stubs for the gRPC interop and health protos.

Why: the interop server (deploy/grpc/interop_server.py) and client
(tests/grpc/interop_client.py) need the grpc.testing and grpc.health.v1
messages and stubs, but nothing generated is committed.  This module runs
grpc_tools.protoc over deploy/grpc/protos/ once, caches the result, and
imports it.

How:
    import interop_pb
    pb = interop_pb.load()            # or load(cache_dir="/some/dir")
    pb.messages_pb2.SimpleRequest(response_size=10)
    pb.test_pb2_grpc.TestServiceStub(channel)
    pb.health_pb2_grpc.add_HealthServicer_to_server(...)

Cache: $PORTICO_GRPC_STUBS_DIR if set, else <tmp>/portico-grpc-stubs-<uid>;
inside it one directory per hash of (proto files, protoc and protobuf
versions), so editing a proto regenerates.  Generation happens in a private
temporary directory that is then renamed into place, so processes starting at
the same time never see a half-written tree (the loser of the rename race
just uses the winner's copy).

Package clash: protoc names the modules after the proto paths, i.e.
grpc.testing.test_pb2, but "grpc" is grpcio itself.  The generated tree is
therefore put under a private top-level package (portico_grpc_stubs) and the
generated "from grpc.testing import x_pb2" lines are rewritten to point
there.  "import grpc" in the *_pb2_grpc modules still means grpcio.
"""

import hashlib
import importlib
import os
import re
import shutil
import sys
import tempfile
import types

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protos")
PROTOS = (
    "grpc/testing/empty.proto",
    "grpc/testing/messages.proto",
    "grpc/testing/test.proto",
    "grpc/health/v1/health.proto",
)
STUB_PKG = "portico_grpc_stubs"
# Generated code importing a sibling generated module (never grpcio itself).
_GEN_IMPORT = re.compile(r"^from (grpc\.[\w.]+) import (\w+_pb2)\b", re.M)


def _cache_key():
    import google.protobuf
    import grpc_tools.protoc

    # protoc's output depends on the tools package too: key on its install time.
    h = hashlib.sha256()
    h.update(google.protobuf.__version__.encode())
    h.update(os.path.getmtime(grpc_tools.protoc.__file__).hex().encode())
    for rel in PROTOS:
        h.update(rel.encode() + b"\0")
        with open(os.path.join(PROTO_ROOT, rel), "rb") as f:
            h.update(f.read() + b"\0")
    return h.hexdigest()[:16]


def _default_cache_dir():
    env = os.environ.get("PORTICO_GRPC_STUBS_DIR")
    if env:
        return env
    return os.path.join(tempfile.gettempdir(), "portico-grpc-stubs-%d" % os.getuid())


def _generate(dest):
    """Run protoc into dest/STUB_PKG and rewrite the cross-module imports."""
    from grpc_tools import protoc

    out = os.path.join(dest, STUB_PKG)
    os.makedirs(out)
    argv = ["grpc_tools.protoc", "-I" + PROTO_ROOT,
            "--python_out=" + out, "--grpc_python_out=" + out, *PROTOS]
    if protoc.main(argv) != 0:
        raise RuntimeError("grpc_tools.protoc failed on %s" % PROTO_ROOT)
    for root, _dirs, files in os.walk(out):
        open(os.path.join(root, "__init__.py"), "a").close()
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            with open(path) as f:
                text = f.read()
            text = _GEN_IMPORT.sub(r"from %s.\1 import \2" % STUB_PKG, text)
            with open(path, "w") as f:
                f.write(text)


def _ensure(cache_dir):
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    if os.stat(cache_dir).st_uid != os.getuid():
        raise RuntimeError("stub cache %s is not owned by us" % cache_dir)
    final = os.path.join(cache_dir, _cache_key())
    if os.path.isdir(os.path.join(final, STUB_PKG)):
        return final
    tmp = tempfile.mkdtemp(prefix=".gen-", dir=cache_dir)
    try:
        _generate(tmp)
        try:
            os.rename(tmp, final)  # atomic; fails if another process won
        except OSError:
            if not os.path.isdir(os.path.join(final, STUB_PKG)):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


_loaded = None


def load(cache_dir=None):
    """Generate (if needed) and import the stubs; returns a namespace with
    empty_pb2, messages_pb2, test_pb2, test_pb2_grpc, health_pb2,
    health_pb2_grpc."""
    global _loaded
    if _loaded is None:
        root = _ensure(cache_dir or _default_cache_dir())
        if root not in sys.path:
            sys.path.insert(0, root)
        mods = {}
        for rel in PROTOS:
            base = rel[:-len(".proto")]
            pkg = STUB_PKG + "." + base.replace("/", ".")
            short = os.path.basename(base)
            mods[short + "_pb2"] = importlib.import_module(pkg + "_pb2")
            mods[short + "_pb2_grpc"] = importlib.import_module(pkg + "_pb2_grpc")
        _loaded = types.SimpleNamespace(**mods)
    return _loaded


if __name__ == "__main__":
    pb = load(sys.argv[1] if len(sys.argv) > 1 else None)
    print(os.path.dirname(os.path.dirname(pb.test_pb2.__file__)))
