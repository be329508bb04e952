"""Endpoint safety (ACCESS.md §E): where a subscription may make this server send requests.

- ``https`` is allowed; ``http`` only to loopback (127.0.0.0/8, ::1, ``localhost``) unless
  ``FHIR_SUBSCRIPTION_ALLOW_HTTP`` is on; any other scheme is refused.
- The host is resolved and *every* address checked: private (10/8, 172.16/12, 192.168/16, fc00::/7),
  link-local (169.254/16, fe80::/10), cloud metadata, unspecified and multicast addresses are refused whatever
  the scheme, unless ``FHIR_SUBSCRIPTION_ALLOW_PRIVATE`` is on.

Checked when a Subscription is created or updated, and again before each delivery (a name may resolve
elsewhere later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from fhir_server.fhir.outcome import Unprocessable

_LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
_PRIVATE = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "100.64.0.0/10",  # private, shared (CGNAT)
    "169.254.0.0/16", "fe80::/10",  # link-local (169.254.169.254 is the usual metadata address)
    "0.0.0.0/8", "::/128", "224.0.0.0/4", "ff00::/8", "255.255.255.255/32",  # unspecified, multicast, broadcast
)]
_METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200",
                                                "fd00:ec2::254", "192.0.0.192")}
_WHERE = ["Subscription.channel.endpoint"]


class EndpointRefused(Unprocessable):
    """The endpoint is not a place this server sends requests to (422 business-rule)."""


def _refuse(text: str) -> EndpointRefused:
    return EndpointRefused(text, _WHERE, code="business-rule")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(ip in n for n in _LOOPBACK)


def refused_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is refused, or None.

    >>> refused_address(ipaddress.ip_address("10.1.2.3"))
    'a private, link-local or reserved address'
    >>> refused_address(ipaddress.ip_address("169.254.169.254"))
    'a cloud metadata address'
    >>> refused_address(ipaddress.ip_address("93.184.216.34")) is None
    True
    """
    if ip in _METADATA:
        return "a cloud metadata address"
    if any(ip.version == n.version and ip in n for n in _PRIVATE):
        return "a private, link-local or reserved address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), 5)
    except (OSError, TimeoutError):
        return []
    return sorted({str(info[4][0]) for info in infos})


async def check(url: str, *, allow_http: bool, allow_private: bool) -> None:
    """Raise :class:`EndpointRefused` (422) unless ``url`` is an allowed endpoint."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refuse(f"endpoint {url!r} is not a valid URL") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https"):
        raise _refuse(f"endpoint {url!r}: only https (or http to loopback) endpoints are allowed")
    if not host:
        raise _refuse(f"endpoint {url!r} has no host")
    if parts.username or parts.password:
        raise _refuse(f"endpoint {url!r} must not carry credentials; use channel.header")
    literal = _address(host)
    addresses = [literal] if literal is not None else \
        [a for a in (_address(t) for t in await resolve(host, port)) if a is not None]
    if not addresses:
        raise _refuse(f"endpoint host {host!r} does not resolve")
    loopback = host == "localhost" or all(is_loopback(a) for a in addresses)
    if scheme == "http" and not loopback and not allow_http:
        raise _refuse(f"endpoint {url!r}: plain http is allowed only to loopback (use https, or set "
                      "FHIR_SUBSCRIPTION_ALLOW_HTTP)")
    if not allow_private:
        for a in addresses:
            why = refused_address(a)
            if why is not None:
                raise _refuse(f"endpoint host {host!r} resolves to {a}, {why}; such endpoints are refused "
                              "(FHIR_SUBSCRIPTION_ALLOW_PRIVATE allows them)")
