"""Reaching a host: one probe and one retry policy, shared by the weight and the dataset downloads.

:func:`reach` opens ``host:port`` directly, or the proxy urllib would use for the URL (asking an
HTTPS proxy to ``CONNECT``), within a timeout that also bounds the name lookup; offline it fails
in seconds instead of hanging. :func:`with_retries` runs a download a bounded number of times,
with a growing pause, when it failed in a way that may pass (a timeout, a dropped connection, a
body cut short: :class:`IncompleteTransfer`).
"""
from __future__ import annotations

import socket
import threading
import time
import urllib.parse
import urllib.request
import warnings
from typing import Callable, TypeVar

PROBE_TIMEOUT_S = 3.0  # how long we wait for a host before declaring ourselves offline
NETWORK_ATTEMPTS = 2  # tries per download before falling back or failing
RETRY_PAUSE_S = 2.0  # pause before the second try; doubled before each further one

T = TypeVar("T")


class IncompleteTransfer(ConnectionError):
    """A response body that ended before the bytes its headers promised (Content-Length, Content-Range): worth retrying."""

    def __init__(self, url: str, received: int, expected: int | None, hint: str = "", what: str = "") -> None:
        """``received`` of ``expected`` bytes of ``url`` are on disk; ``hint`` says what to do, ``what`` what went wrong (default: cut short)."""
        what = what or f"the transfer ended after {received:,} of {expected:,} bytes"
        super().__init__(f"{url}: {what}" + (f"; {hint}" if hint else ""))
        self.url, self.received, self.expected, self.what = url, received, expected, what


def proxy_for(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of the proxy urllib would use for ``url`` (``HTTP(S)_PROXY``); None for a direct connection."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return (parsed.hostname, parsed.port or 80) if parsed.hostname else None


def _connect(url: str, timeout: float) -> None:
    """Open the connection a request for ``url`` would open; through an HTTPS proxy, also wait for its CONNECT reply."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    proxy = proxy_for(url)
    with socket.create_connection(proxy or (host, port), timeout=timeout) as sock:
        if proxy is not None and parts.scheme == "https":  # a proxy that accepts and then says nothing fails here
            sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            if not sock.recv(16).startswith(b"HTTP/"):
                raise ConnectionError(f"the proxy {proxy[0]}:{proxy[1]} did not answer a CONNECT to {host}")


def reach(url: str, timeout: float | None = None) -> None:
    """Raise ``OSError`` (with the reason) unless ``url``'s host, or the proxy for it, answers within ``timeout`` s.

    A failed probe is not worth retrying (:func:`worth_retrying`): offline, a command fails at once.

    Behind a proxy the host name is the proxy's to resolve: this machine may have no DNS at all.
    URLs without a host (``file://``) pass.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    host = urllib.parse.urlsplit(url).hostname
    if not host:
        return
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            _connect(url, timeout)
            outcome.append(None)
        except OSError as err:
            outcome.append(err)

    # A thread, because name resolution ignores the socket timeout and can hang on its own.
    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome or isinstance(outcome[0], TimeoutError):  # a host that does not answer: no retry either
        raise ConnectionError(f"reaching {host} took more than {timeout:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def can_reach(host: str, port: int = 443, timeout: float | None = None) -> bool:
    """True when ``https://host:port`` (through the HTTPS proxy, if one is set) answers within ``timeout`` s."""
    try:
        reach(f"https://{host}:{port}/", timeout)
    except OSError:
        return False
    return True


def worth_retrying(err: BaseException) -> bool:
    """A timeout, a dropped connection or a body cut short may pass; a failed name lookup, a refusal or an HTTP error will not."""
    transient = (TimeoutError, socket.timeout, ConnectionResetError, ConnectionAbortedError, IncompleteTransfer)
    seen = 0
    while err is not None and seen < 5:  # the error, its reason (URLError) and its causes
        if isinstance(err, transient) or isinstance(getattr(err, "reason", None), transient):
            return True
        err, seen = err.__cause__, seen + 1
    return False


def with_retries(call: Callable[[], T], what: str, attempts: int | None = None, pause: float | None = None) -> T:
    """``call()``, tried at most ``attempts`` times (default :data:`NETWORK_ATTEMPTS`) while it fails in a way that may pass.

    Before try ``k + 1`` it waits ``pause * 2 ** (k - 1)`` s (default pause :data:`RETRY_PAUSE_S`)
    and warns; other errors, and the last one, are raised as they are.
    """
    attempts = NETWORK_ATTEMPTS if attempts is None else attempts
    pause = RETRY_PAUSE_S if pause is None else pause
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except OSError as err:
            if attempt == attempts or not worth_retrying(err):
                raise
            wait = pause * 2 ** (attempt - 1)
            warnings.warn(f"downloading {what} failed ({type(err).__name__}: {err}); "
                          f"trying again ({attempt + 1}/{attempts}) in {wait:g} s", stacklevel=3)
            time.sleep(wait)
    raise AssertionError("unreachable")
