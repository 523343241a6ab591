#!/usr/bin/env python3
"""http_upstream.py: the service flosse.http calls in spec/e2e/http_client_spec.lua.

  python3 spec/tools/http_upstream.py PORTFILE LOGFILE [CERT KEY]

Listens on 127.0.0.1 (a free port, written to PORTFILE once it listens;
with CERT and KEY, HTTPS with that certificate), one thread a connection,
and appends one line per notable event to LOGFILE (what the spec checks:
a client that went away, how much of a huge body was sent). Routes:

  /echo          JSON of the request: method, path, headers, body (hex);
                 answers 201 with two X-Multi headers and X-Upstream: yes
  /slow?s=N&id=X waits N seconds, then "slow X done"; logs "slow X closed"
                 when the client closes the connection first
  /huge?n=N[&chunked=1]  N bytes of "x", with Content-Length or chunked;
                 logs "huge sent=BYTES" or "huge aborted sent=BYTES"
  /binary        the bytes 0..255, four times
  /status?code=N an empty answer with that status
  /redirect      302 to /echo
  /big-headers   200 KiB of response headers
  /allow?user=U  "yes" for U == "alice", else "no"
"""
import json
import os
import select
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORTFILE, LOGFILE = sys.argv[1], sys.argv[2]
log_lock = threading.Lock()


def log(line):
    with log_lock, open(LOGFILE, "a") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        route = url.path
        if route == "/echo":
            headers = {}
            for k, v in self.headers.items():
                headers.setdefault(k.lower(), []).append(v)
            out = json.dumps({"method": self.command, "path": self.path, "headers": headers,
                              "body": body.hex()}).encode()
            self.answer(201, out, [("Content-Type", "application/json"), ("X-Multi", "a"),
                                   ("X-Multi", "b"), ("X-Upstream", "yes")])
        elif route == "/slow":
            self.slow(float(q.get("s", "3")), q.get("id", "-"))
        elif route == "/huge":
            self.huge(int(q["n"]), q.get("chunked") == "1")
        elif route == "/binary":
            self.answer(200, bytes(range(256)) * 4, [("Content-Type", "application/octet-stream")])
        elif route == "/status":
            self.answer(int(q["code"]))
        elif route == "/redirect":
            self.answer(302, b"", [("Location", "/echo")])
        elif route == "/big-headers":
            self.answer(200, b"ok", [("X-Big-%d" % i, "v" * 1000) for i in range(200)])
        elif route == "/allow":
            self.answer(200, b"yes" if q.get("user") == "alice" else b"no")
        else:
            self.answer(404, b"no such route\n")

    def slow(self, seconds, ident):
        log("slow %s started" % ident)
        deadline = time.time() + seconds
        conn = self.connection
        while time.time() < deadline:
            r, _, _ = select.select([conn], [], [], min(0.05, max(0, deadline - time.time())))
            if r:
                try:
                    peek = conn.recv(1, socket.MSG_PEEK)
                except (OSError, ssl.SSLError):
                    peek = b""
                if not peek:
                    log("slow %s closed" % ident)
                    self.close_connection = True
                    return
                time.sleep(0.05)  # a pipelined request: not ours to read now
        self.answer(200, ("slow %s done" % ident).encode())
        log("slow %s done" % ident)

    def huge(self, n, chunked):
        self.send_response(200)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        piece = b"x" * 65536
        sent = 0
        try:
            while sent < n:
                k = min(len(piece), n - sent)
                if chunked:
                    self.wfile.write(b"%x\r\n" % k + piece[:k] + b"\r\n")
                else:
                    self.wfile.write(piece[:k])
                sent += k
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            log("huge aborted sent=%d" % sent)
            self.close_connection = True
            return
        log("huge sent=%d" % sent)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up mid-answer is what some specs do on purpose


server = Server(("127.0.0.1", 0), Handler)
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
