"""Template tags for the admin home (``templates/admin/index.html``): the counts that need
attention and the admin's pages grouped by use (``calendars.admin.home``)."""

from __future__ import annotations

from django import template
from django.http import HttpRequest

from ..admin import home as admin_home

register = template.Library()


@register.simple_tag
def attention_items(request: HttpRequest) -> list[admin_home.Item]:
    return admin_home.attention(request.user)


@register.simple_tag
def admin_sections(app_list: list[dict]) -> list[admin_home.Section]:
    return admin_home.sections(app_list)
