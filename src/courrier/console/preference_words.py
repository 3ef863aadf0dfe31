"""What the preference page says, in each language Courrier ships (en, fr, es, nl).

Chosen by the contact's locale (``fr_BE`` → ``fr``), else the tenant's,
else English. ``{tenant}`` and ``{name}`` are filled in by the page.
"""

from __future__ import annotations

from collections.abc import Mapping

WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Your notifications from {tenant}",
        "intro": "{name}, choose what you hear about. Untick a box to stop that notification "
        "on that channel.",
        "saved": "Your choices are saved.",
        "notification": "Notification",
        "channels": "Channels",
        "always": "always sent: this notification cannot be switched off",
        "copies": "Copies of new bookings",
        "copy_off": "none",
        "copy_each": "one mail for each booking",
        "copy_digest": "one mail a day listing the day's bookings",
        "save": "Save",
    },
    "fr": {
        "title": "Vos notifications de {tenant}",
        "intro": "{name}, choisissez ce que vous recevez. Décochez une case pour ne plus recevoir "
        "cette notification sur ce canal.",
        "saved": "Vos choix sont enregistrés.",
        "notification": "Notification",
        "channels": "Canaux",
        "always": "toujours envoyée : cette notification ne peut pas être désactivée",
        "copies": "Copies des nouvelles réservations",
        "copy_off": "aucune",
        "copy_each": "un courriel par réservation",
        "copy_digest": "un courriel par jour avec les réservations du jour",
        "save": "Enregistrer",
    },
    "es": {
        "title": "Sus notificaciones de {tenant}",
        "intro": "{name}, elija lo que recibe. Desmarque una casilla para dejar de recibir esa "
        "notificación por ese canal.",
        "saved": "Sus preferencias se han guardado.",
        "notification": "Notificación",
        "channels": "Canales",
        "always": "siempre se envía: esta notificación no se puede desactivar",
        "copies": "Copias de las nuevas reservas",
        "copy_off": "ninguna",
        "copy_each": "un correo por reserva",
        "copy_digest": "un correo al día con las reservas del día",
        "save": "Guardar",
    },
    "nl": {
        "title": "Uw meldingen van {tenant}",
        "intro": "{name}, kies wat u ontvangt. Vink een vakje uit om die melding via dat kanaal "
        "niet meer te ontvangen.",
        "saved": "Uw keuzes zijn opgeslagen.",
        "notification": "Melding",
        "channels": "Kanalen",
        "always": "altijd verzonden: deze melding kan niet worden uitgeschakeld",
        "copies": "Kopieën van nieuwe reserveringen",
        "copy_off": "geen",
        "copy_each": "één e-mail per reservering",
        "copy_digest": "één e-mail per dag met de reserveringen van die dag",
        "save": "Opslaan",
    },
}

#: how a channel is named on the page
CHANNEL_NAMES: Mapping[str, Mapping[str, str]] = {
    "en": {"email": "email", "sms": "SMS", "push": "push", "webhook": "webhook"},
    "fr": {"email": "courriel", "sms": "SMS", "push": "notification push", "webhook": "webhook"},
    "es": {"email": "correo", "sms": "SMS", "push": "notificación push", "webhook": "webhook"},
    "nl": {"email": "e-mail", "sms": "sms", "push": "pushmelding", "webhook": "webhook"},
}


def language_of(*locales: str | None) -> str:
    """The first of ``locales`` the page speaks (by language: ``fr_BE`` → ``fr``), else English."""
    for locale in locales:
        language = (locale or "").replace("-", "_").split("_")[0].lower()
        if language in WORDS:
            return language
    return "en"
