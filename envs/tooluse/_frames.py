"""Length-prefixed JSON frames (4-byte big-endian size, UTF-8 JSON object) on raw fds.

Used by the launcher and, copied into the sandbox root, by the worker; standard
library only.
"""

import json
import os
import struct


class FrameError(ValueError):
    """The bytes on the pipe are not a frame (or a larger one than allowed)."""


def read_frame(fd: int, max_bytes: int = 1 << 30):
    """The next frame's object, or None at end of file."""
    def exact(n: int):
        chunks, got = [], 0
        while got < n:
            chunk = os.read(fd, n - got)
            if not chunk:
                return None
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    header = exact(4)
    if header is None:
        return None
    size = struct.unpack(">I", header)[0]
    if size > max_bytes:
        raise FrameError(f"a {size}-byte frame (at most {max_bytes})")
    body = exact(size)
    if body is None:
        return None
    try:
        frame = json.loads(body.decode("utf-8"))
    except ValueError as e:
        raise FrameError(str(e)) from None
    if not isinstance(frame, dict):
        raise FrameError("not a JSON object")
    return frame


def write_frame(fd: int, obj) -> None:
    data = json.dumps(obj).encode("utf-8")
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data):]
