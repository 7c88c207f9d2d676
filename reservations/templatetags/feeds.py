"""``{% my_feed as feed %}``: the signed-in person's active calendar feed (its dates), or None.

The feed's URL is not here: only its hash is stored, so it is shown once, when issued
(``reservations.feeds.rotate_mine``).
"""

from django import template

from .. import feeds
from ..models import FeedToken

register = template.Library()


@register.simple_tag(takes_context=True)
def my_feed(context) -> FeedToken | None:
    user = context["request"].user
    return feeds.active_token(user=user) if user.is_authenticated else None
