"""App config: wires the history source column and the notification receivers."""

from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    name = "reservations"
    verbose_name = "Reservations"

    def ready(self) -> None:
        from . import receivers

        receivers.connect()
