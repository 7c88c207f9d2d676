"""``/feeds/``: the iCalendar feeds, and the profile page's rotate/revoke actions."""

from django.urls import path

from . import feeds

app_name = "feeds"

urlpatterns = [
    path("<str:key>.ics", feeds.feed, name="feed"),
    path("mine/rotate/", feeds.rotate_mine, name="rotate-mine"),
    path("mine/revoke/", feeds.revoke_mine, name="revoke-mine"),
]
