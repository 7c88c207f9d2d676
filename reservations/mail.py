"""A development email backend: each email is one INFO log line group, not a MIME dump.

Django's console backend prints the whole message (every header, the HTML part, the base64
.ics) to stdout, and the Celery worker logs each of those lines at WARNING: ``make run`` showed
hundreds of warnings per booking. This backend logs the recipients, the subject and the plain
text part (links included, so a developer can follow them) at INFO, and names the attachments.
``EMAIL_URL`` picks any real backend instead (``settings.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

log = logging.getLogger("reservations.mail")


class LogEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            attachments = [a[0] for a in message.attachments if isinstance(a, tuple) and a[0]]
            parts = ["text", *(["html"] if getattr(message, "alternatives", None) else [])]
            log.info(
                "Email to %s: %s [%s%s]\n%s",
                ", ".join(message.recipients()),
                message.subject,
                "+".join(parts),
                "".join(f", {name}" for name in attachments),
                message.body.rstrip(),
            )
            sent += 1
        return sent
