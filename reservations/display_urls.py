"""``/display/``: room displays (``reservations.views.display``)."""

from django.urls import path

from .views import display

app_name = "display"

urlpatterns = [
    path("", display.home, name="home"),
    path("pair/", display.pair, name="pair"),
    path("<str:token>/", display.page, name="page"),
    path("<str:token>/state/", display.state, name="state"),
    path("<str:token>/book/", display.book, name="book"),
    path("<str:token>/check-in/", display.check_in, name="check_in"),
    path("<str:token>/end/", display.end, name="end"),
    path("<str:token>/extend/", display.extend, name="extend"),
]
