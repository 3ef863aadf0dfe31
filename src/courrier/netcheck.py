"""Which network addresses a tenant's settings may make the server connect to.

Mailbox hosts (the inbox) and webhook URLs are chosen by tenants, so
without a check any tenant could make Courrier open connections into the
operator's own network (server-side request forgery: an admin page on
127.0.0.1, a cloud metadata service on 169.254.169.254). A host is resolved,
every address it gives is judged, and only a globally routable one, or one
inside a network the operator allows (``COURRIER_IMAP_ALLOWED_NETWORKS``,
``COURRIER_WEBHOOK_ALLOWED_NETWORKS``), may be connected to; the callers
connect to the address they checked, never to a second lookup.

Shared by the inbound and engine layers, so it sits beside them.
"""

from __future__ import annotations

import ipaddress
import socket

from courrier.errors import ConfigurationError

__all__ = ["IPAddress", "IPNetwork", "describe", "is_allowed", "parse_networks", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str, setting: str) -> tuple[IPNetwork, ...]:
    """The networks of a comma-separated list of CIDRs; a wrong one is an error naming ``setting``."""
    networks = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigurationError(
                f"{setting}: {part!r} is not a network such as 192.168.1.0/24"
            ) from exc
    return tuple(networks)


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped IPv6 one, so ``::ffff:10.0.0.5`` is judged as ``10.0.0.5``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def describe(address: IPAddress) -> str:
    """What kind of non-public address this is, in words."""
    plain = _unmapped(address)
    kinds = (
        (plain.is_loopback, "a loopback address"),
        (plain.is_unspecified, "an unspecified address"),
        (plain.is_link_local, "a link-local address"),
        (plain.is_multicast, "a multicast address"),
        (plain.is_private, "a private address"),
    )
    return next((words for found, words in kinds if found), "not a public address")


def is_allowed(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether a tenant may make Courrier connect to ``address``: public, or listed by the operator."""
    plain = _unmapped(address)
    if any(plain in network or address in network for network in networks):
        return True
    return plain.is_global and not plain.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, once each (raises :class:`socket.gaierror` if none)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in found:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
