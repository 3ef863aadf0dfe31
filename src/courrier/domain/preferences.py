"""Preferences: which (kind, channel) a contact has switched off. Pure: no I/O.

A contact's preferences are a few rules, each for one kind or every kind
(``"*"``) and one channel or every channel (``"*"``), saying on or off and
who set it (the contact on the preference page, or staff through the API).
The most specific rule decides: kind and channel, then kind on every channel,
then every kind on the channel, then every kind on every channel. No rule
means on. A kind whose ``preference_optional`` is False (a password reset)
is never switched off, whatever the rules say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from courrier.domain.kind_json import CHANNELS as KIND_CHANNELS
from courrier.domain.kinds import NotificationKind
from courrier.domain.recipients import expand

#: a rule's kind or channel that stands for every kind or channel
ANY = "*"
#: the channels a rule may name: those a kind may use
CHANNELS = KIND_CHANNELS


class SetBy(StrEnum):
    """Who wrote a preference: the contact (preference page) or staff (API)."""

    CONTACT = "contact"
    STAFF = "staff"


#: roles only staff hold: kinds sent to nobody else are not shown to members
STAFF_ROLES = frozenset({"manager", "assigned_manager"})
STAFF_PREFIXES = ("staff:", "booking_copy:")

#: how the reason of a suppressed message names who switched it off
_WHO = {
    SetBy.CONTACT: "switched off by the contact on the preference page",
    SetBy.STAFF: "switched off by staff",
}


@dataclass(frozen=True)
class Preference:
    """One rule: ``kind`` (or ``"*"``) on ``channel`` (or ``"*"``) is on or off."""

    kind: str
    channel: str
    enabled: bool
    set_by: SetBy = SetBy.CONTACT

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.channel)


def deciding_rule(rules: Iterable[Preference], kind_name: str, channel: str) -> Preference | None:
    """The rule that decides ``kind_name`` on ``channel``: the most specific match, or None."""
    by_key = {rule.key: rule for rule in rules}
    for key in ((kind_name, channel), (kind_name, ANY), (ANY, channel), (ANY, ANY)):
        if key in by_key:
            return by_key[key]
    return None


def is_switched_off(rules: Iterable[Preference], kind: NotificationKind, channel: str) -> bool:
    """True when the rules stop ``kind`` on ``channel`` (never for a kind that cannot be)."""
    return suppression_reason(rules, kind, channel) is not None


def suppression_reason(
    rules: Iterable[Preference], kind: NotificationKind, channel: str
) -> str | None:
    """Why a message of ``kind`` on ``channel`` is not sent, or None when it may be.

    The reason names who switched it off and what the rule covered, so the
    message's history tells why nothing was sent.
    """
    if not kind.preference_optional:
        return None
    rule = deciding_rule(rules, kind.name, channel)
    if rule is None or rule.enabled:
        return None
    what = "every kind" if rule.kind == ANY else rule.kind
    where = "every channel" if rule.channel == ANY else rule.channel
    return f"{_WHO[rule.set_by]} ({what}, {where})"


def effective_switches(
    rules: Iterable[Preference], kinds: Iterable[NotificationKind]
) -> dict[tuple[str, str], bool]:
    """Whether each (kind, channel) of ``kinds`` is on, as the rules leave it.

    What the preference page shows: a kind that cannot be switched off is
    always on.
    """
    rules = list(rules)
    return {
        (kind.name, channel): not is_switched_off(rules, kind, channel)
        for kind in kinds
        for channel in kind.channels
    }


def for_staff_only(kind: NotificationKind) -> bool:
    """True when every role of the kind is held by staff (a manager's notice, a digest)."""
    roles = [r for role in kind.recipients for r in expand(role)]
    return bool(roles) and all(r in STAFF_ROLES or r.startswith(STAFF_PREFIXES) for r in roles)
