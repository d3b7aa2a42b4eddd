"""Where the gateway may post a webhook: the URL checks and the SSRF guard.

Outside the devnet, webhook URLs must not lead to private, loopback,
link-local or otherwise non-public addresses: a merchant could otherwise make
the gateway call into its own network.  The URL is checked when it is set
(``destination_refusal``), and the dispatcher connects only to addresses it
has checked itself at connect time (``PublicOnlyBackend``), so a name that
resolves elsewhere later, or differently on every lookup, gets nowhere.

No database here: ``gateway.schemas`` checks URLs with ``check_postable``.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from gateway.errors import DestinationRefused

#: NAT64 and IPv4-compatible IPv6 addresses embed an IPv4 address in their last 32 bits.
_EMBEDS_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is a public unicast address (IPv4 inside IPv6 judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.sixtofour is not None:
            return is_public(address.sixtofour)
        if any(address in network for network in _EMBEDS_IPV4):
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.is_site_local:
            return False
    return address.is_global and not address.is_multicast


def public_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, all of them public; else DestinationRefused
    (final when one is not public, not final when the name does not resolve now)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(
            f"{host} does not resolve ({exc})", final=False, host=host
        ) from exc
    addresses = [str(sockaddr[0]).split("%")[0] for *_, sockaddr in infos]
    for address in addresses:
        if not is_public(ipaddress.ip_address(address)):
            raise DestinationRefused(
                f"{host} resolves to {address}, which is not a public address",
                final=True,
                host=host,
            )
    return addresses


def check_postable(url: str) -> None:
    """ValueError unless the dispatcher's HTTP client can parse ``url`` (it will post there)."""
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from exc


def check_destination(url: str) -> None:
    """DestinationRefused unless ``url``'s host resolves, and only to public addresses."""
    parts = urlsplit(url)
    public_addresses(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))


def destination_refusal(url: str, allow_private: bool) -> str | None:
    """Why the gateway will not post to ``url``, or None when it may (with
    ``allow_private``, the devnet, every URL may be used)."""
    if allow_private:
        return None
    try:
        check_destination(url)
    except DestinationRefused as refused:
        return str(refused)
    return None


class PublicOnlyBackend(httpcore.SyncBackend):
    """Connects only to public addresses, resolved and checked here at connect time (the
    address checked is the address connected to: no second lookup to rebind)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            address = public_addresses(host, port)[0]
        except DestinationRefused as refused:
            raise httpcore.ConnectError(str(refused)) from refused
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


def public_only_transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections go through :class:`PublicOnlyBackend` (TLS
    still verifies the URL's host name: only the TCP connection uses the address)."""
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(  # httpx builds its pool without a backend hook
        ssl_context=httpx.create_ssl_context(), network_backend=PublicOnlyBackend()
    )
    return transport
