#!/usr/bin/python3
"""Write one gRPC-framed grpc.testing.SimpleRequest to a file, for h2load -d.

    tests/bench/grpc_body.py OUTFILE [SIZE] [RESPONSE_SIZE]

SIZE is the length of payload.body (default 10), RESPONSE_SIZE the
response_size field (default: SIZE). The message is encoded by hand so the
benchmarks need neither protoc nor generated stubs:

    0x00, 4-byte big-endian length     gRPC over HTTP/2 Length-Prefixed-Message
    SimpleRequest {
      response_size (2, varint)
      payload (3) = Payload { body (2) = SIZE bytes of 'x' }
    }

h2_backend ignores response_size (it answers with --grpc-size); a real
TestService honours it, so the same file drives both.
"""

import struct
import sys


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(num, wire_type, value):
    """One protobuf field: tag, then the varint or the length-delimited bytes."""
    tag = varint(num << 3 | wire_type)
    if wire_type == 0:
        return tag + varint(value)
    return tag + varint(len(value)) + value


def simple_request(size, response_size):
    payload = field(2, 2, b"x" * size)
    return field(2, 0, response_size) + field(3, 2, payload)


def main(argv):
    if len(argv) not in (2, 3, 4) or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    try:
        size = int(argv[2]) if len(argv) > 2 else 10
        response_size = int(argv[3]) if len(argv) > 3 else size
        if size < 0 or not 0 <= response_size < 2**31:
            raise ValueError
    except ValueError:
        sys.stderr.write("grpc_body: sizes must be integers >= 0 (response_size < 2^31)\n")
        return 2
    msg = simple_request(size, response_size)
    with open(argv[1], "wb") as f:
        f.write(struct.pack(">BI", 0, len(msg)) + msg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
