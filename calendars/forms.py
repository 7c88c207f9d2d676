"""Forms of the calendar setup pages: test a provider's connection, pick a space, bind it."""

from __future__ import annotations

from django import forms

from reservations.models import Space, SpaceKind

from . import bindings
from .models import CalendarProvider, ProviderKind


def pulled_bookings_field(label: str, help_text: str) -> forms.ChoiceField:
    """What becomes of the bookings pulled from a calendar a binding stops reading
    (``calendars.bindings``): asked on the admin's binding form and on the setup page."""
    return forms.ChoiceField(
        label=label,
        choices=[("", "---------"), *bindings.CHOICES],
        required=False,
        help_text=help_text,
    )


class ConnectionTestForm(forms.Form):
    """Which mailbox (Microsoft) or calendar (Google) to test the provider against."""

    target = forms.CharField(
        label="Mailbox or calendar to test",
        max_length=320,
        strip=True,
        widget=forms.TextInput(attrs={"list": "test-targets", "autocomplete": "off", "size": 50}),
    )

    def __init__(self, provider: CalendarProvider, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.provider = provider
        if provider.kind == ProviderKind.GOOGLE:
            self.fields["target"].help_text = (
                "A resource calendar's id (its email) or a user's address. The service account "
                f"acts as {provider.delegated_user_email or 'itself (no delegated user set)'}."
            )
        else:
            self.fields["target"].help_text = (
                "A room mailbox or the delegated user's address; Reserva reads its calendars "
                "with the app's own (application) permissions."
            )

    def clean_target(self) -> str:
        value = self.cleaned_data["target"]
        if "@" not in value or any(c.isspace() for c in value):
            raise forms.ValidationError("Enter an email address (a mailbox or calendar id).")
        return value


class SpaceChoiceForm(forms.Form):
    space = forms.ModelChoiceField(
        queryset=Space.objects.select_related("location").order_by("location__name", "name"),
        help_text="Container spaces cannot sync; bind their seats instead.",
    )

    def clean_space(self) -> Space:
        space = self.cleaned_data["space"]
        if space.kind == SpaceKind.CONTAINER:
            raise forms.ValidationError(
                f"{space.name} is a container space with seats; a container cannot sync with a "
                "calendar. Bind its seats instead."
            )
        return space


class BindingForm(forms.Form):
    """The sync resource and the sync calendar of a space (LibCal's two fields)."""

    resource_email = forms.EmailField(
        label="Sync resource",
        help_text=(
            "The room mailbox or resource calendar's address. Leave the authorizing account's "
            "address when the room's calendar was shared with that account."
        ),
    )
    calendar = forms.ChoiceField(label="Sync calendar", required=False)

    def __init__(
        self,
        *args,
        calendars: list[list[str]] | None = None,
        pulled_from: tuple[str, int] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.calendars = calendars or []
        if pulled_from:
            # Asked only when it matters: the space's binding imported bookings from a
            # calendar (``pulled_from`` = its address and how many), and saving another one
            # would leave them behind (calendars.bindings).
            address, count = pulled_from
            self.fields["pulled_bookings"] = pulled_bookings_field(
                f"{count} booking(s) pulled from {address}",
                (
                    "Made in Outlook / Google Calendar and imported from the calendar this space "
                    "syncs with now. If you pick another calendar, keep them as local bookings "
                    "or cancel them (their people are told). Their events stay in that calendar."
                ),
            )
        self.fields["calendar"].choices = [("", "---------")] + [
            (item[0], item[1]) for item in self.calendars
        ]

    def calendar_name(self, calendar_id: str) -> str:
        return next((item[1] for item in self.calendars if item[0] == calendar_id), "")
