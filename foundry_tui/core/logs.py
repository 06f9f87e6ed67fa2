"""The log file: ``<platformdirs user_log_dir>/foundry-tui.log``, for what a user sends in
when something went wrong.

Nothing is opened at import: the handler set up here opens the file (folder 0700, file
0600, rotated at 1 MB, 3 kept) when the first record comes, so a run without a problem
or ``--debug`` never touches the disk. Everything written passes through `redact`: API
keys, bearer tokens, Authorization headers, the values of environment variables that
hold keys, and the turn's prompt texts (without ``--debug``) never reach the file.

Every unexpected exception (a bug, not a server's or the network's failure) goes through
`report_bug`: its traceback is logged, and the user is shown one line naming the file.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "LOG_FILE_NAME",
    "debugging",
    "enable_debug",
    "get_logger",
    "hide_secret",
    "log_file",
    "redact",
    "report_bug",
    "reset",
    "withhold_texts",
]

LOG_FILE_NAME = "foundry-tui.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
_ROOT = "foundry_tui"
_APP_DIR = "foundry-tui"  # config.APP_NAME (core does not import config)

# Compiled when the first record is written, not at start-up.
_PATTERN_TEXTS = (
    r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",  # a JWT
    r"\bsk-[A-Za-z0-9_*-]{8,}",  # OpenAI-style keys
    r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}",
    # "Authorization: <scheme> <credentials>", the scheme kept.
    r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|digest|token|negotiate)\s+)?)[^\s\"',}]+",
    r"(?i)(api[-_]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{8,}",
)
# Environment variables whose values are masked wherever they appear (the profile's key
# variable is named by the backend when it reads it; this catches the usual names).
_SECRET_NAME = r"(?i)(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)"
_SHORTEST_SECRET = 6
# Prompt texts shorter than this are not withheld: masking "hi" would garble every line.
_SHORTEST_TEXT = 6
_KEPT_TEXTS = 32

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_variables: set[str] = set()
_texts: deque[str] = deque(maxlen=_KEPT_TEXTS)
_debug = False


def log_file() -> Path:
    """Where the log is written (``$XDG_STATE_HOME/foundry-tui/log/`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_log_dir(_APP_DIR)) / LOG_FILE_NAME


def debugging() -> bool:
    """Whether ``--debug`` was given: prompts and replies may be logged."""
    return _debug


def enable_debug() -> None:
    """``--debug``: log at DEBUG level, prompt and reply texts included."""
    global _debug
    _debug = True
    logging.getLogger(_ROOT).setLevel(logging.DEBUG)
    get_logger("foundry_tui.logs").debug("--debug: prompts and replies are logged")


def hide_secret(value: str, variable: str | None = None) -> None:
    """Masks ``value`` (a key, a token) in everything logged from now on; ``variable``
    names the environment variable that holds it, whose value is masked too."""
    with _lock:
        if len(value) >= _SHORTEST_SECRET:
            _secrets.add(value)
        if variable:
            _secret_variables.add(variable)


def withhold_texts(texts: Iterable[str]) -> None:
    """Texts a user typed (a turn's prompts): kept out of the log unless ``--debug``."""
    if _debug:
        return
    with _lock:
        _texts.extend(t for t in texts if len(t) >= _SHORTEST_TEXT)


def redact(text: str) -> str:
    """``text`` without keys, tokens or (without ``--debug``) the prompts withheld."""
    with _lock:
        secrets = set(_secrets)
        names = set(_secret_variables)
        texts = [] if _debug else sorted(set(_texts), key=len, reverse=True)
    for name, value in os.environ.items():
        if (name in names or re.search(_SECRET_NAME, name)) and len(value) >= _SHORTEST_SECRET:
            secrets.add(value)
    for value in texts:  # longest first: a prompt that holds another is withheld whole
        if value in text:
            text = text.replace(value, f"[prompt withheld: {len(value)} characters]")
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _PATTERN_TEXTS:  # re caches the compiled patterns
        text = re.sub(pattern, lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class _Redact(logging.Filter):
    """Formats a record's message and traceback now and masks them (see `redact`)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _PrivateRotatingFile(logging.Handler):
    """A rotating file that is opened on the first record, in a folder only its owner can
    read (0700), as a file only its owner can read (0600), backups included. A file that
    cannot be written is given up silently: the app must go on (and must not print on
    the terminal it draws on); `problem` says why."""

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self.problem: str | None = None
        self._file: logging.Handler | None = None
        self.addFilter(_Redact())
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.problem is not None:
            return
        if self._file is None:
            try:
                self._file = self._open()
            except OSError as error:
                self.problem = error.strerror or str(error)
                return
        try:
            self._file.emit(record)
        except Exception as error:  # logging must never take the app down
            self.problem = str(error)

    def _open(self) -> logging.Handler:
        from logging.handlers import RotatingFileHandler

        path = log_file()
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

        class Private(RotatingFileHandler):
            def _open(self) -> io.TextIOWrapper:
                fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.fchmod(fd, 0o600)  # a file made before, with looser rights
                return open(fd, "a", encoding=self.encoding, errors=self.errors)

        handler = Private(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8")
        handler.setFormatter(self.formatter)
        handler.raiseExceptions = False  # type: ignore[attr-defined]
        return handler

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        self.problem = self.problem or "the log could not be written"


_handler: _PrivateRotatingFile | None = None


def _install() -> _PrivateRotatingFile:
    global _handler
    with _lock:
        if _handler is None:
            _handler = _PrivateRotatingFile()
            root = logging.getLogger(_ROOT)
            root.addHandler(_handler)
            if root.level == logging.NOTSET:
                root.setLevel(logging.DEBUG if _debug else logging.INFO)
        return _handler


def get_logger(name: str) -> logging.Logger:
    """A logger under ``foundry_tui`` whose records go to the log file."""
    _install()
    return logging.getLogger(name)


def report_bug(error: BaseException, where: str) -> str:
    """Logs an unexpected exception with its traceback; returns the one line to show."""
    handler = _install()
    get_logger("foundry_tui.bug").error(
        "Unexpected error in %s", where, exc_info=(type(error), error, error.__traceback__)
    )
    handler.flush()
    name = type(error).__name__
    if handler.problem is not None or handler.path is None:
        return f"Unexpected error ({name}), and the log could not be written: {handler.problem}"
    return f"Unexpected error ({name}): a bug. The details are in {handler.path}"


def reset() -> None:
    """Closes the log file and forgets --debug, the secrets and the texts; the next
    record opens the file again, in the log folder of that moment (embedding, tests)."""
    global _handler, _debug
    with _lock:
        handler, _handler = _handler, None
        _debug = False
        _secrets.clear()
        _secret_variables.clear()
        _texts.clear()
    root = logging.getLogger(_ROOT)
    root.setLevel(logging.NOTSET)
    if handler is not None:
        root.removeHandler(handler)
        handler.close()
