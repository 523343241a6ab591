#!/usr/bin/python3
"""h2_client.py: an HTTP/2 client with the stream control the e2e specs need
(spec/e2e/h2_spec.lua), on Debian's python3-h2. Run it with /usr/bin/python3.

  h2_client.py streams --port P [--tls] [--timeout S] --plan JSON
               [--stall I] [--reset I --reset-after N]
               [--stop-after-events N] [--until-closed] [--ready-file F]
               [--ready-events N]
  h2_client.py badframe --port P [--timeout S] KIND

streams: one connection; every request of the plan (a JSON list of
{"path":, "method": "GET", "headers": [[name, value], ...], "body": ""}) is
sent at once, right after the preface and before anything is read (so the
server's SETTINGS are not acknowledged yet when the requests arrive); a
request with "after": FILE is sent on the same connection once FILE exists.
Received DATA is acknowledged (WINDOW_UPDATE) on the connection and on its
stream, except for request I of --stall, whose stream never gets one (the
connection still does); with --stall-for S it does, S seconds late (a slow
reader rather than a stopped one). --reset I sends RST_STREAM (CANCEL) on request I
once it received N SSE frames. The run ends when every stream ended or was
reset, or (--stop-after-events N) when every stream that did neither
received N frames; with --until-closed, when the server closed the
connection; in any case at the timeout. --ready-file F is written once
every stream sent received --ready-events frames (default 1) or ended.

badframe: the connection preface, then KIND: "garbage" (bytes that are not
a frame after the preface), "data0" (SETTINGS, then a DATA frame on stream
0), "even" (SETTINGS, then HEADERS on stream 2), "continuation" (SETTINGS,
then a CONTINUATION frame without HEADERS). Reads until the server closes.

Both print one JSON object on stdout:
  settings    the server's first SETTINGS: {"MAX_CONCURRENT_STREAMS": n, ...}
  streams     per request: path, id, status, headers ([[name, value]...]),
              body (text; "body_len" always), frames (SSE frames: "\\n\\n"),
              t_sent, t_first, t_last (its first and last DATA),
              ended (END_STREAM), reset (RST_STREAM from the server),
              reset_code, t_first, t_end (seconds since the start)
  goaway      {"error_code", "last_stream_id", "t"} or null
  closed      true when the server closed the connection
  order       what ended, in order: "end I", "reset I", "goaway"
  timed_out, elapsed
"""
import argparse
import json
import os
import select
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
from hyperframe.frame import ContinuationFrame, HeadersFrame, SettingsFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(port, tls):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the spec's self-signed certificate
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
        if sock.selected_alpn_protocol() != "h2":
            raise SystemExit("ALPN did not choose h2: %r" % sock.selected_alpn_protocol())
    sock.settimeout(0.2)
    return sock


def setting_names(changed):
    out = {}
    for code, ch in changed.items():
        try:
            name = h2.settings.SettingCodes(code).name
        except ValueError:
            name = str(int(code))
        out[name] = ch.new_value
    return out


def run_streams(args):
    plan = json.loads(args.plan)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    sock = connect(args.port, args.tls)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_inbound_headers=False))
    conn.initiate_connection()
    conn.increment_flow_control_window(1 << 24)  # the connection window is never what stalls
    streams, by_id = [], {}

    def send_request(i):
        req = plan[i]
        sid = conn.get_next_available_stream_id()
        method = req.get("method", "GET")
        body = req.get("body", "").encode()
        headers = [(":method", method), (":scheme", "https" if args.tls else "http"),
                   (":authority", "127.0.0.1:%d" % args.port), (":path", req["path"])]
        headers += [(k.lower(), v) for k, v in req.get("headers", [])]
        conn.send_headers(sid, headers, end_stream=not body)
        if body:
            conn.send_data(sid, body, end_stream=True)
        streams[i]["id"] = sid
        streams[i]["t_sent"] = round(time.monotonic() - t0, 3)
        by_id[sid] = i

    deferred = []
    for i, req in enumerate(plan):
        streams.append({"path": req["path"], "id": None, "status": None, "headers": [], "body": b"",
                        "frames": 0, "ended": False, "reset": False, "reset_code": None, "t_first": None,
                        "t_end": None})
        if req.get("after"):
            deferred.append(i)
        else:
            send_request(i)
    sock.sendall(conn.data_to_send())

    out = {"settings": None, "goaway": None, "closed": False, "order": [], "timed_out": False}
    ready_written = False
    reset_sent = False
    delayed = []  # (when, bytes, stream id): the slow reader's window updates still to send

    def finished(s):
        return s["ended"] or s["reset"] or "client_reset" in s

    def done():
        if args.until_closed:
            return out["closed"]
        if out["closed"] or (out["goaway"] and all(finished(s) or s["id"] is None
                                                   or s["id"] > out["goaway"]["last_stream_id"]
                                                   for s in streams)):
            return True
        if args.stop_after_events is not None:
            return all(finished(s) or s["frames"] >= args.stop_after_events for s in streams)
        return all(finished(s) for s in streams)

    while not done():
        now = time.monotonic()
        if now > deadline:
            out["timed_out"] = True
            break
        while delayed and delayed[0][0] <= now:
            _, n, sid = delayed.pop(0)
            try:
                conn.increment_flow_control_window(n, stream_id=sid)
            except h2.exceptions.StreamClosedError:
                pass
            sock.sendall(conn.data_to_send())
        for i in [i for i in deferred if os.path.exists(plan[i]["after"])]:
            deferred.remove(i)
            send_request(i)
            sock.sendall(conn.data_to_send())
        try:
            data = sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            data = b""
        if not data:
            out["closed"] = True
            break
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            out["client_error"] = repr(e)
            events = []
        t = round(time.monotonic() - t0, 3)
        for ev in events:
            i = by_id.get(getattr(ev, "stream_id", None))
            s = streams[i] if i is not None else None
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                if out["settings"] is None:
                    out["settings"] = setting_names(ev.changed_settings)
            elif isinstance(ev, h2.events.ResponseReceived) and s:
                for k, v in ev.headers:
                    if k == ":status":
                        s["status"] = int(v)
                    else:
                        s["headers"].append([k, v])
            elif isinstance(ev, h2.events.DataReceived) and s:
                s["body"] += ev.data
                s["frames"] = s["body"].count(b"\n\n")
                if s["t_first"] is None:
                    s["t_first"] = t
                s["t_last"] = t
                if ev.flow_controlled_length:
                    if i == args.stall and args.stall_for is not None:
                        # a slow reader: the stream's window opens stall_for seconds later
                        conn.increment_flow_control_window(ev.flow_controlled_length)
                        delayed.append((time.monotonic() + args.stall_for, ev.flow_controlled_length,
                                        ev.stream_id))
                    elif i == args.stall:
                        conn.increment_flow_control_window(ev.flow_controlled_length)
                    else:
                        try:
                            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        except h2.exceptions.StreamClosedError:
                            conn.increment_flow_control_window(ev.flow_controlled_length)
                if (args.reset is not None and i == args.reset and not reset_sent
                        and s["frames"] >= args.reset_after):
                    conn.reset_stream(ev.stream_id, h2.errors.ErrorCodes.CANCEL)
                    reset_sent = True
                    s["client_reset"] = t
            elif isinstance(ev, h2.events.StreamEnded) and s:
                s["ended"], s["t_end"] = True, t
                out["order"].append("end %d" % i)
            elif isinstance(ev, h2.events.StreamReset) and s:
                if ev.remote_reset:
                    s["reset"], s["reset_code"], s["t_end"] = True, int(ev.error_code), t
                    out["order"].append("reset %d" % i)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                out["goaway"] = {"error_code": int(ev.error_code), "last_stream_id": ev.last_stream_id,
                                 "t": t, "additional_data": (ev.additional_data or b"").decode("latin-1")}
                out["order"].append("goaway")
        pending = conn.data_to_send()
        if pending:
            try:
                sock.sendall(pending)
            except OSError:
                pass
        if args.ready_file and not ready_written and all(
                s["id"] is None or finished(s) or (s["status"] is not None and s["frames"] >= args.ready_events)
                for s in streams):
            with open(args.ready_file, "w") as f:
                f.write("ready\n")
            ready_written = True
    sock.close()
    for s in streams:
        s["body_len"] = len(s["body"])
        body = s["body"]
        s["body"] = body.decode("utf-8", "replace") if len(body) <= args.max_body else None
    out["streams"] = streams
    out["elapsed"] = round(time.monotonic() - t0, 3)
    return out


def frame_bytes(frame):
    return frame.serialize()


def raw_frame(ftype, flags, stream_id, payload):
    """A frame built by hand (hyperframe refuses the illegal ones)."""
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream_id.to_bytes(4, "big")
            + payload)


def run_badframe(args):
    t0 = time.monotonic()
    sock = connect(args.port, False)
    enc = hpack.Encoder()
    settings = frame_bytes(SettingsFrame(0))
    if args.kind == "garbage":
        payload = PREFACE + b"GARBAGE, NOT A FRAME\r\n\r\n"
    elif args.kind == "data0":
        payload = PREFACE + settings + raw_frame(0, 0, 0, b"hello")
    elif args.kind == "even":
        hf = HeadersFrame(2, data=enc.encode([(":method", "GET"), (":scheme", "http"),
                                              (":authority", "x"), (":path", "/plain/")]))
        hf.flags.add("END_HEADERS")
        hf.flags.add("END_STREAM")
        payload = PREFACE + settings + frame_bytes(hf)
    elif args.kind == "continuation":
        payload = PREFACE + settings + frame_bytes(ContinuationFrame(1, data=b"\x82"))
    else:
        raise SystemExit("unknown kind " + args.kind)
    sock.sendall(payload)
    # Read frames until the server closes (bounded); collect GOAWAY.
    buf, out = b"", {"goaway": None, "closed": False, "frames": [], "timed_out": False}
    deadline = t0 + args.timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if not data:
            out["closed"] = True
            break
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, sid = buf[3], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            body = buf[9:9 + length]
            buf = buf[9 + length:]
            out["frames"].append({"type": ftype, "stream": sid, "length": length})
            if ftype == 7:  # GOAWAY
                out["goaway"] = {"last_stream_id": int.from_bytes(body[0:4], "big") & 0x7FFFFFFF,
                                 "error_code": int.from_bytes(body[4:8], "big"),
                                 "additional_data": body[8:].decode("latin-1")}
        if buf.startswith(b"HTTP/1."):
            out["http1"] = buf.decode("latin-1")
    else:
        out["timed_out"] = True
    sock.close()
    out["elapsed"] = round(time.monotonic() - t0, 3)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["streams", "badframe"])
    p.add_argument("kind", nargs="?")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--plan", default="[]")
    p.add_argument("--stall", type=int)
    p.add_argument("--stall-for", type=float)
    p.add_argument("--reset", type=int)
    p.add_argument("--reset-after", type=int, default=1)
    p.add_argument("--stop-after-events", type=int)
    p.add_argument("--until-closed", action="store_true")
    p.add_argument("--ready-file")
    p.add_argument("--ready-events", type=int, default=1)
    p.add_argument("--max-body", type=int, default=1 << 20)
    args = p.parse_args()
    out = run_streams(args) if args.scenario == "streams" else run_badframe(args)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
