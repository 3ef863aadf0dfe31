"""Which addresses a tenant's mailbox may make the server connect to.

A mailbox's host is chosen by a tenant, so without a check any tenant could
make Courrier open a connection into the operator's own network (server-side
request forgery). The host is therefore resolved here, every address is
checked, and only a globally routable one, or one inside
``COURRIER_IMAP_ALLOWED_NETWORKS``, is handed back to connect to: the
connection goes to the address that was checked, never to a second lookup
whose answer could differ.
"""

from __future__ import annotations

import ipaddress
import socket

from courrier.errors import ConfigurationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOWED_NETWORKS_SETTING = "COURRIER_IMAP_ALLOWED_NETWORKS"


class AddressNotAllowed(Exception):
    """A host resolved to an address a tenant may not reach; the message says why, in words."""

    def __init__(self, host: str, address: IPAddress) -> None:
        self.host, self.address = host, address
        super().__init__(
            f"{host} resolves to {address}, {describe(address)}; "
            f"an operator can allow it with {ALLOWED_NETWORKS_SETTING}"
        )


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """The networks of a comma-separated list of CIDRs; a wrong one is a configuration error."""
    networks = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigurationError(
                f"{ALLOWED_NETWORKS_SETTING}: {part!r} is not a network such as 192.168.1.0/24"
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
    """Whether a tenant's mailbox may connect to ``address``: public, or listed by the operator."""
    plain = _unmapped(address)
    if any(plain in network or address in network for network in networks):
        return True
    return plain.is_global and not plain.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (raises :class:`socket.gaierror` if none)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in found:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def allowed_address(host: str, port: int, networks: tuple[IPNetwork, ...]) -> str:
    """The address to connect to for ``host``, once every address it resolves to is allowed.

    Every address is checked, not only the first, so a name cannot mix a
    public address with an internal one and hope for the second.
    """
    addresses = resolve(host, port)
    for address in addresses:
        if not is_allowed(address, networks):
            raise AddressNotAllowed(host, address)
    return str(addresses[0])
