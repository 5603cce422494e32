"""Which web pages may drive the viewer: a websocket Origin allow-list.

A browser lets any page open a websocket to ``ws://127.0.0.1:8080`` and sends the page's origin
in the ``Origin`` header; without a check, a page the user visits could read the scene, select
and export. The viewer accepts a websocket only from its own page (the listening port on a
loopback name, or on this machine's names and addresses when it listens on another address),
from origins given with ``--allow-origin``, and from clients that send no ``Origin`` (scripts,
not browsers). Host names are matched, not resolved, so a DNS-rebound ``evil.example`` page is
refused even though it reaches 127.0.0.1.

viser 1.1.1 opens its ``websockets.asyncio.server.serve`` inside its server thread and exposes
no hook for the handshake, so :func:`checking_origins` substitutes a ``serve`` subclass whose
``process_request`` runs the check first, only while ``viser.ViserServer(...)`` is constructed
(the server is bound before the constructor returns); site-packages is not changed.
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def machine_names() -> set[str]:
    """This machine's host name, fully qualified name and the addresses they resolve to."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        with contextlib.suppress(OSError):
            names |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
    return {n.lower() for n in names if n}


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` lower-cased without a trailing slash (what browsers send)."""
    return text.strip().rstrip("/").lower()


@dataclass
class OriginPolicy:
    """host: the address the viewer listens on; extra: ``--allow-origin`` values (full origins)."""

    host: str
    extra: tuple[str, ...] = ()
    names: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = set(LOOPBACK_NAMES)
        if not is_loopback(self.host):
            # listening on every address: this machine's names, and 0.0.0.0 itself (a page opened at
            # http://0.0.0.0:PORT on this machine is the viewer's own: no other process has its port)
            self.names |= machine_names() | {"0.0.0.0"} if self.host in ANY_ADDRESS else {self.host.lower()}
        self.extra = tuple(normalize_origin(o) for o in self.extra)

    def allows(self, origin: str | None, port: int) -> bool:
        """Whether a websocket from a page at ``origin`` (None: no Origin header) may connect to ``port``."""
        if origin is None:
            return True
        if normalize_origin(origin) in self.extra:
            return True
        try:
            parts = urlsplit(origin.strip())
            origin_port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and (parts.hostname or "") in self.names and origin_port == port


def _refuse(connection: Any, origin: str) -> Any:
    return connection.respond(403, f"gsseg view: websocket from origin {origin!r} refused (see --allow-origin)\n")


@contextlib.contextmanager
def checking_origins(policy: OriginPolicy) -> Iterator[None]:
    """While active, websocket servers created by ``websockets.asyncio.server.serve`` refuse the
    upgrade requests ``policy`` does not allow (HTTP 403) before their own ``process_request``."""
    import websockets.asyncio.server as ws_server

    original = ws_server.serve

    class serve(original):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, process_request: Any = None, **kwargs: Any) -> None:
            async def process(connection: Any, request: Any) -> Any:
                origin = request.headers.get("Origin")
                if request.headers.get("Upgrade", "").lower() == "websocket" and not policy.allows(
                    origin, connection.local_address[1]
                ):
                    return _refuse(connection, str(origin))
                if process_request is None:
                    return None
                response = process_request(connection, request)
                return await response if inspect.isawaitable(response) else response

            super().__init__(*args, process_request=process, **kwargs)

    setattr(ws_server, "serve", serve)  # noqa: B010 (mypy: a class attribute of a module)
    try:
        yield
    finally:
        setattr(ws_server, "serve", original)  # noqa: B010


def network_urls(host: str, port: int) -> list[str]:
    """URLs other machines can open for a viewer listening on ``host`` (not loopback)."""
    if host in ANY_ADDRESS:
        names = sorted(n for n in machine_names() if not is_loopback(n))
    else:
        names = [host]
    return [f"http://{f'[{n}]' if ':' in n else n}:{port}" for n in names]
