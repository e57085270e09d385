"""Files are replaced whole or not at all: a reader never sees half a file, a crash leaves the old one."""

import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, content: bytes | str | Callable[[Path], None]) -> Path:
    """Write `content` (bytes, text, or a function writing to the path it is given) next to `path`, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if callable(content):
        content(tmp)
    elif isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    os.replace(tmp, path)
    return path
