"""Token banners for the portal: ``{% calendar_token_alerts user as alerts %}``.

One alert per connected calendar whose token is expired, revoked, or near the provider's idle
limit (``expiring``), in words the person can act on. Used by
``calendars/portal/_token_banner.html``, which the portal's base template pulls in through
``calendars/portal/banners.html``.
"""

from __future__ import annotations

from django import template

from calendars.models import TokenStatus, UserToken
from calendars.tokens import NEEDS_ATTENTION

register = template.Library()


@register.simple_tag
def calendar_token_alerts(user) -> list[dict[str, str]]:
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    alerts = []
    rows = UserToken.objects.filter(
        user=user, status__in=NEEDS_ATTENTION, provider__is_active=True
    ).select_related("provider")
    for token in rows:
        kind = token.provider.get_kind_display()
        if token.status == TokenStatus.EXPIRING:
            limit = "90 days" if token.provider.kind == "microsoft" else "six months"
            text = (
                f"Your {kind} calendar connection ({token.account_email}) has not been used "
                f"for a long time and will stop working after {limit} unused. Connect it again "
                "to keep your reservations in your calendar."
            )
        else:
            what = "has expired" if token.status == TokenStatus.EXPIRED else "was revoked"
            text = (
                f"Your {kind} calendar connection ({token.account_email}) {what}. Reservations "
                "are not reaching your calendar until you connect again; nothing is lost."
            )
        alerts.append({"status": token.status, "text": text})
    return alerts
