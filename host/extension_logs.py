"""Per-extension log files: ``<data>/logs/extensions/<id>.log``, bounded, read by
``jan extensions logs ID``.

A running server routes every record of ``jan.ext.<id>`` (an extension's ``ctx.log``) and every
host record tagged ``extra={"extension": id}`` (activation, reload) into that extension's file.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import time
from collections import deque
from pathlib import Path

MAX_BYTES = 1_000_000
BACKUPS = 1
_SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path(data_folder: Path, ext_id: str) -> Path:
    if not _SAFE_ID.fullmatch(ext_id):
        raise ValueError(f"{ext_id!r} is not an extension id")
    return data_folder / "logs" / "extensions" / f"{ext_id}.log"


class ExtensionLogFiles(logging.Handler):
    def __init__(self, data_folder: Path) -> None:
        super().__init__(logging.INFO)
        self.data_folder = data_folder
        self.files: dict[str, logging.Handler] = {}
        self.formatter = logging.Formatter(FORMAT)

    def _owner(self, record: logging.LogRecord) -> str | None:
        tagged = getattr(record, "extension", None)
        if isinstance(tagged, str):
            return tagged
        if record.name.startswith("jan.ext."):
            return record.name[len("jan.ext."):].split(".")[0]
        return None

    def emit(self, record: logging.LogRecord) -> None:
        owner = self._owner(record)
        if owner is None:
            return
        try:
            handler = self.files.get(owner)
            if handler is None:
                path = log_path(self.data_folder, owner)
                path.parent.mkdir(parents=True, exist_ok=True)
                handler = logging.handlers.RotatingFileHandler(
                    path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
                handler.setFormatter(self.formatter)
                self.files[owner] = handler
            handler.emit(record)
        except Exception:  # noqa: BLE001 - logging must never break the server
            self.handleError(record)

    def close(self) -> None:
        for handler in self.files.values():
            handler.close()
        super().close()


def install(data_folder: Path) -> ExtensionLogFiles:
    """Attach to the ``jan`` logger; extension and reload lines are kept from INFO up."""
    handler = ExtensionLogFiles(data_folder)
    logging.getLogger("jan").addHandler(handler)
    for name in ("jan.ext", "jan.host.reload"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    return handler


def tail(path: Path, lines: int) -> list[str]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", errors="replace") as f:
        return list(deque(f, maxlen=lines))


def follow(path: Path, poll: float = 0.5) -> None:
    """Print new lines as they are written (``-f``); Ctrl-C ends it."""
    position = path.stat().st_size if path.is_file() else 0
    while True:
        if path.is_file():
            size = path.stat().st_size
            if size < position:  # rotated
                position = 0
            if size > position:
                with path.open(encoding="utf-8", errors="replace") as f:
                    f.seek(position)
                    print(f.read(), end="", flush=True)
                    position = f.tell()
        time.sleep(poll)
