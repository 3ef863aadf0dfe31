"""Which addresses a tenant's mailbox may make the server connect to.

A mailbox's host is chosen by a tenant, so without a check any tenant could
make Courrier open a connection into the operator's own network (server-side
request forgery). The host is therefore resolved here, every address is
checked (:mod:`courrier.netcheck`), and only a globally routable one, or
one inside ``COURRIER_IMAP_ALLOWED_NETWORKS``, is handed back to connect
to: the connection goes to the address that was checked, never to a second
lookup whose answer could differ.
"""

from __future__ import annotations

from courrier.netcheck import IPAddress, IPNetwork, describe, is_allowed, parse_networks, resolve

__all__ = [
    "ALLOWED_NETWORKS_SETTING",
    "AddressNotAllowed",
    "IPNetwork",
    "allowed_address",
    "describe",
    "is_allowed",
    "parse_networks",
    "resolve",
]

ALLOWED_NETWORKS_SETTING = "COURRIER_IMAP_ALLOWED_NETWORKS"


class AddressNotAllowed(Exception):
    """A host resolved to an address a tenant may not reach; the message says why, in words."""

    def __init__(self, host: str, address: IPAddress) -> None:
        self.host, self.address = host, address
        super().__init__(
            f"{host} resolves to {address}, {describe(address)}; "
            f"an operator can allow it with {ALLOWED_NETWORKS_SETTING}"
        )


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
