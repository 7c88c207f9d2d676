"""``{% my_feed as feed %}``: the signed-in person's calendar feed links, or None."""

from django import template

from .. import feeds

register = template.Library()


@register.simple_tag(takes_context=True)
def my_feed(context) -> dict | None:
    user = context["request"].user
    token = feeds.active_token(user=user) if user.is_authenticated else None
    if token is None:
        return None
    return {"url": feeds.feed_url(token), "webcal": feeds.feed_url(token, webcal=True)}
