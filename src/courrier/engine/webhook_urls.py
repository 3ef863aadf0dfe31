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

The judgement of an address is the mailbox reader's too
(:mod:`courrier.netcheck`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from courrier.netcheck import IPNetwork, describe, is_allowed, resolve

__all__ = ["IPNetwork", "Target", "UrlNotAllowed", "check_form", "target"]

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


def target(url: str, networks: tuple[IPNetwork, ...]) -> Target:
    """Where to connect for ``url``, once every address its host resolves to is allowed.

    UrlNotAllowed for a wrong URL, a host that does not resolve, or an
    address a tenant may not reach.
    """
    parts = check_form(url)
    host = str(parts.hostname)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise UrlNotAllowed(f"{host} does not resolve ({exc})") from exc
    for address in addresses:
        if not is_allowed(address, networks):
            raise UrlNotAllowed(
                f"{host} resolves to {address}, {describe(address)}; "
                f"an operator can allow it with {ALLOWED_NETWORKS_SETTING}"
            )
    checked = addresses[0]
    literal = f"[{checked}]" if checked.version == 6 else str(checked)
    connect = parts._replace(netloc=f"{literal}:{port}").geturl()
    named = f"[{host}]" if ":" in host else host
    host_header = named if parts.port is None else f"{named}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Target(connect, host_header, extensions)
