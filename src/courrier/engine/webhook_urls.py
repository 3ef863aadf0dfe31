"""Which URLs a tenant's webhooks may make Courrier post to, and where to connect for one.

A webhook URL is chosen by a tenant, so without a check any tenant could
make Courrier send requests into the operator's own network (server-side
request forgery: an admin page on 127.0.0.1, a cloud metadata service on
169.254.169.254). The host is resolved, every address it gives is judged,
and only a globally routable one, or one inside
``COURRIER_WEBHOOK_ALLOWED_NETWORKS``, is accepted. The API checks when an
endpoint is created; the deliverer checks again before every post (DNS
answers change) and connects to the address it checked, never to a second
lookup, with the host name kept for the ``Host`` header and for TLS.

The same judgement as the mailbox reader's (inbound/allowed_hosts.py); it
lives here because the engine does not import the inbound layer.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOWED_NETWORKS_SETTING = "COURRIER_WEBHOOK_ALLOWED_NETWORKS"
MAX_URL = 2000


class UrlNotAllowed(Exception):
    """A webhook URL Courrier will not post to; the message says why, in words."""


@dataclass(frozen=True)
class Target:
    """Where one post goes: the URL with the checked address, and the name it stands for."""

    url: str
    host_header: str
    extensions: dict[str, str] = field(default_factory=dict)


def check_form(url: str) -> SplitResult:
    """The parts of an http(s) URL with a host; UrlNotAllowed otherwise."""
    if len(url) > MAX_URL:
        raise UrlNotAllowed(f"a webhook URL has at most {MAX_URL} characters")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed("a webhook URL starts with https:// (or http://)")
    try:
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"the URL's port is not valid: {exc}") from exc
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed(
            "a webhook URL carries no user name or password; the signature proves the sender"
        )
    if not parts.hostname or port == 0:
        raise UrlNotAllowed("the URL names no host: write https://host/path")
    return parts


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _describe(address: IPAddress) -> str:
    plain = _unmapped(address)
    kinds = (
        (plain.is_loopback, "a loopback address"),
        (plain.is_unspecified, "an unspecified address"),
        (plain.is_link_local, "a link-local address"),
        (plain.is_multicast, "a multicast address"),
        (plain.is_private, "a private address"),
    )
    return next((words for found, words in kinds if found), "not a public address")


def _allowed(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    plain = _unmapped(address)
    if any(plain in network or address in network for network in networks):
        return True
    return plain.is_global and not plain.is_multicast


def target(url: str, networks: tuple[IPNetwork, ...]) -> Target:
    """Where to connect for ``url``, once every address its host resolves to is allowed.

    UrlNotAllowed for a wrong URL, a host that does not resolve, or an
    address a tenant may not reach.
    """
    parts = check_form(url)
    host = str(parts.hostname)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlNotAllowed(f"{host} does not resolve ({exc})") from exc
    addresses: list[IPAddress] = []
    for info in found:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not _allowed(address, networks):
            raise UrlNotAllowed(
                f"{host} resolves to {address}, {_describe(address)}; "
                f"an operator can allow it with {ALLOWED_NETWORKS_SETTING}"
            )
        addresses.append(address)
    checked = addresses[0]
    literal = f"[{checked}]" if checked.version == 6 else str(checked)
    connect = parts._replace(netloc=f"{literal}:{port}").geturl()
    named = f"[{host}]" if ":" in host else host
    host_header = named if parts.port is None else f"{named}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Target(connect, host_header, extensions)
