#!/usr/bin/python3
# bench/h2idle.py: holds N idle SSE streams multiplexed over K HTTP/2
# connections (TLS, ALPN h2) for bench/run h2, which reads the server's RSS
# while they are held. h2load cannot say when every stream has its first
# event, this can: it prints "h2idle: holding" on stderr once each stream got
# one complete event (or the --timeout passed), holds them --hold seconds
# (answering the server's PINGs and SETTINGS), then prints one key=value line
# on stdout and closes everything.
#
#   /usr/bin/python3 bench/h2idle.py --port P [--host 127.0.0.1] [--path /bench/quiet/]
#       --conns K --streams N [--hold S] [--timeout S] [--cleartext]
#
# Debian's python3-h2 (/usr/bin/python3; a pyenv python3 on PATH lacks it).
# One thread per connection, blocking sockets with a short timeout: K is a
# few dozen at most, and each stream gets one event.
import argparse
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

p = argparse.ArgumentParser(description="N idle HTTP/2 streams over K TLS connections")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--path", default="/bench/quiet/")
p.add_argument("--conns", type=int, required=True)
p.add_argument("--streams", type=int, required=True, help="in all, split evenly over the connections")
p.add_argument("--hold", type=float, default=10.0)
p.add_argument("--timeout", type=float, default=60.0, help="for every stream's first event")
p.add_argument("--cleartext", action="store_true", help="h2c with prior knowledge, no TLS (for trying a server out)")
a = p.parse_args()
if a.conns < 1 or a.streams < a.conns:
    sys.exit("h2idle: --conns at least 1 and --streams at least --conns")

lock = threading.Lock()
totals = {k: 0 for k in ("conns_up", "opened", "first_event", "events", "ended_by_server",
                         "reset", "goaway", "errors", "refused_over_limit", "not_h2", "bad_status", "open")}
stop = threading.Event()
first_errors = []


def add(key, n=1):
    with lock:
        totals[key] += n


def note(msg):
    with lock:
        if len(first_errors) < 5:
            first_errors.append(msg)


def connection(share):
    sock = None
    live = [0]   # this connection's open streams, taken off "open" when it ends
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE     # the run's own self-signed certificate
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((a.host, a.port), timeout=10)
        sock = raw if a.cleartext else ctx.wrap_socket(raw, server_hostname=a.host)
        if not a.cleartext and sock.selected_alpn_protocol() != "h2":
            add("not_h2")
            note("ALPN: %r, not h2" % sock.selected_alpn_protocol())
            return
        sock.settimeout(0.2)
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True,
                                                                            header_encoding="utf-8"))
        conn.initiate_connection()
        # a large window: the events are small, and nothing waits on our WINDOW_UPDATEs
        conn.increment_flow_control_window(1 << 24)
        sock.sendall(conn.data_to_send())
        add("conns_up")
        streams = {}      # stream id -> bytes until its first "\n\n" (None once it had one)
        opened = False
        have_settings = False   # the server's SETTINGS (its stream limit) came
        deadline_settings = time.monotonic() + 10
        while not stop.is_set():
            if not opened and (have_settings or time.monotonic() > deadline_settings):
                limit = conn.remote_settings.max_concurrent_streams
                n = share
                if limit is not None and n > limit:
                    add("refused_over_limit", n - limit)
                    note("the server allows %d concurrent streams a connection, %d asked" % (limit, n))
                    n = limit
                for _ in range(n):
                    sid = conn.get_next_available_stream_id()
                    conn.send_headers(sid, [(":method", "GET"), (":scheme", "http" if a.cleartext else "https"),
                                            (":authority", "%s:%d" % (a.host, a.port)),
                                            (":path", a.path), ("accept", "text/event-stream")],
                                      end_stream=True)
                    streams[sid] = b""
                add("opened", n)
                add("open", n)
                live[0] += n
                opened = True
                sock.sendall(conn.data_to_send())
            try:
                data = sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            if not data:
                if not stop.is_set():
                    add("errors")
                    note("connection closed by the server")
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    have_settings = True
                elif isinstance(ev, h2.events.ResponseReceived):
                    st = dict(ev.headers).get(":status")
                    if st != "200":
                        add("bad_status")
                        note("status %s" % st)
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    add("events", ev.data.count(b"\n\n"))
                    seen = streams.get(ev.stream_id)
                    if seen is not None:
                        seen += ev.data
                        if b"\n\n" in seen:
                            streams[ev.stream_id] = None
                            add("first_event")
                        else:
                            streams[ev.stream_id] = seen
                elif isinstance(ev, h2.events.StreamEnded):
                    add("ended_by_server")
                    add("open", -1)
                    live[0] -= 1
                elif isinstance(ev, h2.events.StreamReset):
                    add("reset")
                    add("open", -1)
                    live[0] -= 1
                    note("stream %d reset, code %s" % (ev.stream_id, ev.error_code))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    add("goaway")
                    note("GOAWAY, code %s" % ev.error_code)
                    return
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
    except (OSError, h2.exceptions.ProtocolError) as e:
        add("errors")
        note("%s: %s" % (type(e).__name__, e))
    finally:
        add("open", -live[0])
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


threads = []
for k in range(a.conns):
    share = a.streams // a.conns + (1 if k < a.streams % a.conns else 0)
    threads.append(threading.Thread(target=connection, args=(share,), daemon=True))
t0 = time.monotonic()
for t in threads:
    t.start()
deadline = t0 + a.timeout
while time.monotonic() < deadline:
    with lock:
        # streams over a connection's limit are never opened: not waited for
        done = totals["first_event"] >= a.streams - totals["refused_over_limit"]
        dead = not any(t.is_alive() for t in threads)
    if done or dead:
        break
    time.sleep(0.05)
with lock:
    up_s = time.monotonic() - t0
    print("h2idle: holding %d of %d streams (first event on each) after %.2f s" %
          (totals["first_event"], a.streams, up_s), file=sys.stderr, flush=True)
stop.wait(a.hold)
with lock:
    open_at_end = totals["open"]
stop.set()
for t in threads:
    t.join(5)
with lock:
    print(" ".join("%s=%d" % (k, v) for k, v in totals.items() if k != "open") +
          " open_at_end=%d up_s=%.2f" % (open_at_end, up_s), flush=True)
    for m in first_errors:
        print("h2idle: " + m, file=sys.stderr)
