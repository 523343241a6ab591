#!/usr/bin/python3
# Writes the seed corpus of spec/fuzz/h2_fuzz.c (docs/fuzzing.md): real client
# byte streams from python3-h2 (Debian's, hence /usr/bin/python3), each after
# the harness's 3 control bytes, and a few frames built by hand.
#   /usr/bin/python3 spec/fuzz/h2_seeds.py spec/fuzz/corpus/h2
import os, struct, sys
import h2.connection, h2.config, h2.settings
out = sys.argv[1]
os.makedirs(out, exist_ok=True)

def conn(**settings):
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding=None))
    if settings:
        c.local_settings = h2.settings.Settings(client=True, initial_values={getattr(h2.settings.SettingCodes, k): v for k, v in settings.items()})
    c.initiate_connection()
    return c

def req(c, sid, method, path, end=True, extra=()):
    c.send_headers(sid, [(':method', method), (':path', path), (':scheme', 'http'), (':authority', 'localhost')] + list(extra), end_stream=end)

def save(name, ctl, data):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(bytes(ctl) + data)

c = conn(); req(c, 1, 'GET', '/r3'); save('get-respond', [0, 0, 0], c.data_to_send())
c = conn(); req(c, 1, 'POST', '/x', end=False, extra=[('content-type', 'text/plain')])
c.send_data(1, b'hello ' * 20); c.send_data(1, b'world', end_stream=True); save('post-echo', [2, 0, 0], c.data_to_send())
c = conn(); req(c, 1, 'GET', '/s5', extra=[('accept', 'text/event-stream')]); c.ping(b'12345678')
c.increment_flow_control_window(100000); save('stream-ping-window', [3, 0, 0], c.data_to_send())
c = conn(INITIAL_WINDOW_SIZE=1000); req(c, 1, 'GET', '/b2')
d = c.data_to_send()
c.increment_flow_control_window(50000, stream_id=1); c.increment_flow_control_window(50000)
save('big-small-window', [1, 0x0f, 0], d + c.data_to_send())
c = conn(); req(c, 1, 'GET', '/s7'); req(c, 3, 'GET', '/d3'); req(c, 5, 'GET', '/h1'); c.reset_stream(3); c.reset_stream(1, error_code=8)
save('three-streams-reset', [2, 0, 3], c.data_to_send())
c = conn(); req(c, 1, 'GET', '/r'); c.close_connection(); save('goaway', [0, 0, 0], c.data_to_send())
c = conn(); req(c, 1, 'HEAD', '/r5'); req(c, 3, 'HEAD', '/s2'); save('head', [3, 0, 0], c.data_to_send())
c = conn(); req(c, 1, 'GET', '/r', extra=[('x-big', 'a' * 1100)]); save('431', [0, 0, 0], c.data_to_send())
c = conn(); req(c, 1, 'POST', '/x', end=False); c.increment_flow_control_window(0x7000)
for i in range(5): c.send_data(1, b'z' * 1000)
c.send_data(1, b'', end_stream=True); save('413', [2, 0, 0], c.data_to_send())
c = conn(); req(c, 1, 'GET', '/h2'); save('heartbeat-timeouts', [0, 0, 3], c.data_to_send())
c = conn()
for i, p in enumerate(['/m1', '/d2', '/c1', '/k0', '/w', '/e1', '/e0', '/t4']):
    req(c, 1 + 2 * i, 'GET', p)
save('modes', [2, 0, 0], c.data_to_send())
c = conn()
for i in range(10): req(c, 1 + 2 * i, 'GET', '/s9')
save('over-max-streams', [3, 0, 0x08], c.data_to_send())
c = conn(HEADER_TABLE_SIZE=0, MAX_FRAME_SIZE=16384, ENABLE_PUSH=0); req(c, 1, 'GET', '/r1')
c.prioritize(1, weight=200); req(c, 3, 'GET', '/r2', extra=[('cookie', 'a=b'), ('user-agent', 'fuzz')])
save('settings-priority', [1, 0, 0], c.data_to_send())
c = conn(); req(c, 1, 'GET', '/s4'); save('stall-write-timeout', [3, 0xff, 0x22], c.data_to_send())
c = conn(); req(c, 1, 'GET', '/b4'); save('half-close', [2, 0x33, 0x04], c.data_to_send())
c = conn(); req(c, 1, 'GET', '/d7'); save('shutdown-deferred', [0, 0, 0x08], c.data_to_send())
# a header block in HEADERS + CONTINUATION, by hand
c = conn(); pre = c.data_to_send()
import hpack
block = hpack.Encoder().encode([(':method', 'GET'), (':path', '/r2'), (':scheme', 'http'), (':authority', 'x'), ('x-a', 'b' * 40)])
def frame(t, fl, sid, p): return struct.pack('>I', len(p))[1:] + bytes([t, fl]) + struct.pack('>I', sid) + p
save('continuation', [2, 0, 0], pre + frame(1, 0x1, 1, block[:10]) + frame(9, 0, 1, block[10:30]) + frame(9, 0x4, 1, block[30:]))
# padded HEADERS and DATA, by hand
c = conn(); pre = c.data_to_send()
block = hpack.Encoder().encode([(':method', 'POST'), (':path', '/x'), (':scheme', 'http'), (':authority', 'x')])
save('padded', [3, 0, 0], pre + frame(1, 0x4 | 0x8, 1, bytes([5]) + block + b'\0' * 5) + frame(0, 0x1 | 0x8, 1, bytes([3]) + b'body' + b'\0' * 3))
# a bad frame after a good request: a DATA on stream 0 (a connection error)
c = conn(); req(c, 1, 'GET', '/s3'); save('protocol-error', [0, 0, 0], c.data_to_send() + frame(0, 0, 0, b'x'))
# HTTP/1.1 on the same port (the preface check says no)
save('http1', [0, 0, 0x10], b'GET /r1 HTTP/1.1\r\nHost: x\r\n\r\n')
# the preface cut short
save('short-preface', [1, 0, 0x10], b'PRI * HTTP/2.0\r\n\r\nS')
# floods: the bytes after the preface repeated (flag 0x40) up to 128 KiB
c = conn(); pre = c.data_to_send()
save('flood-window-update', [0, 0, 0x40], pre + frame(8, 0, 0, struct.pack('>I', 1)))
save('flood-settings', [0x80, 0, 0x40], pre + frame(4, 0, 0, b''))
save('flood-ping-unread', [0, 0xff, 0x60], pre + frame(6, 0, 0, b'12345678'))
save('flood-priority', [3, 0, 0x40], pre + frame(2, 0, 1, struct.pack('>IB', 0, 16)))
save('flood-empty-data', [0, 0, 0x40], pre + frame(1, 0x4, 1, hpack.Encoder().encode([(':method', 'POST'), (':path', '/d7'), (':scheme', 'http'), (':authority', 'x')])) + frame(0, 0, 1, b''))
# the client goes away (flag 0x80) while bodies stream, with big socket buffers (rule 0x80)
c = conn(); req(c, 1, 'GET', '/s7'); req(c, 3, 'GET', '/b3'); save('client-closes', [0x82, 0x0f, 0x80], c.data_to_send())
c = conn(INITIAL_WINDOW_SIZE=0x7fffffff); c.increment_flow_control_window(0x7fff0000)
for i in range(8): req(c, 1 + 2 * i, 'GET', '/b3')
save('eight-big-bodies', [0x80, 0, 0], c.data_to_send())
