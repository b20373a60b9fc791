"""Writes reference.bin: event-stream messages built here from the spec with
Python's struct and zlib (independent of the Rust encoder), checked with
botocore's own decoder, and reference.json: what botocore decoded.

Run: python3 gen_reference.py (needs botocore). The Rust test
`reference_frames_decode_like_botocore` decodes reference.bin and compares it
with reference.json, and re-encodes it byte for byte."""
import base64, json, struct, uuid, zlib

from botocore.eventstream import EventStreamBuffer


def header(name, kind, value):
    n = name.encode()
    out = struct.pack("B", len(n)) + n + struct.pack("B", kind)
    if kind in (0, 1):
        return out
    if kind == 2:
        return out + struct.pack(">b", value)
    if kind == 3:
        return out + struct.pack(">h", value)
    if kind == 4:
        return out + struct.pack(">i", value)
    if kind in (5, 8):
        return out + struct.pack(">q", value)
    if kind in (6, 7):
        b = value if kind == 6 else value.encode()
        return out + struct.pack(">H", len(b)) + b
    if kind == 9:
        return out + value
    raise ValueError(kind)


def message(headers, payload):
    h = b"".join(header(*x) for x in headers)
    total = 16 + len(h) + len(payload)
    prelude = struct.pack(">II", total, len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + h + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


chunk = base64.b64encode(b'{"type":"message_stop"}').decode()
msgs = [
    message([], b"{'foo':'bar'}"),
    message(
        [
            (":event-type", 7, "chunk"),
            (":content-type", 7, "application/json"),
            (":message-type", 7, "event"),
        ],
        json.dumps({"bytes": chunk, "p": "abcdefgh"}).encode(),
    ),
    message(
        [
            ("true", 0, True),
            ("false", 1, False),
            ("byte", 2, -7),
            ("short", 3, -300),
            ("int", 4, 70000),
            ("long", 5, -(2**40)),
            ("bytes", 6, b"\x00\x01\xff"),
            ("string", 7, "h\u00e9llo"),
            ("timestamp", 8, 1700000000123),
            ("uuid", 9, uuid.UUID("0123456789abcdef0123456789abcdef").bytes),
        ],
        b"",
    ),
    message(
        [
            (":exception-type", 7, "throttlingException"),
            (":content-type", 7, "application/json"),
            (":message-type", 7, "exception"),
        ],
        b'{"message":"Too many requests, please wait before trying again."}',
    ),
    message(
        [
            (":error-code", 7, "InternalFailure"),
            (":error-message", 7, "An internal error occurred"),
            (":message-type", 7, "error"),
        ],
        b"",
    ),
]
wire = b"".join(msgs)
buf = EventStreamBuffer()
buf.add_data(wire)
decoded = []
for m in buf:
    hs = {}
    for k, v in m.headers.items():
        if isinstance(v, bytes):
            v = {"bytes": v.hex()}
        elif isinstance(v, uuid.UUID):
            v = {"uuid": v.hex}
        hs[k] = v
    decoded.append({"headers": hs, "payload": m.payload.decode()})
open("reference.bin", "wb").write(wire)
open("reference.json", "w").write(json.dumps(decoded, indent=2, ensure_ascii=False) + "\n")
