"""URLs of the staff portal (namespace ``portal``)."""

from django.urls import path

from .views import (
    approvals,
    booking,
    checkin,
    insights,
    media,
    mine,
    profile,
    schedule,
    search,
    week,
)

app_name = "portal"

urlpatterns = [
    path("", search.find, name="find"),
    path("quick/", search.quick, name="quick"),
    path("book/", booking.book, name="book"),
    path("schedule/", schedule.schedule, name="schedule"),
    path("schedule/space/<int:pk>/", week.week, name="schedule_space"),
    path("my/", mine.my_reservations, name="mine"),
    path("reservations/<int:pk>/", mine.detail, name="detail"),
    path("reservations/<int:pk>/change/", mine.change, name="change"),
    path("reservations/<int:pk>/cancel/", mine.cancel, name="cancel"),
    path("reservations/<int:pk>/check-in/", checkin.check_in, name="check_in"),
    path("check-in/<str:token>/", checkin.link, name="check_in_link"),
    path("spaces/<int:pk>/check-in/", checkin.space, name="space_check_in"),
    path("profile/", profile.profile, name="profile"),
    path("approvals/", approvals.queue, name="approvals"),
    path("approvals/<int:pk>/decide/", approvals.decide, name="approval_decide"),
    path("approvals/<str:token>/", approvals.link, name="approval_link"),
    path("media/<path:path>", media.serve, name="media"),
    path("insights/", insights.page, name="insights"),
    path("insights/export.csv", insights.export, name="insights_export"),
]
