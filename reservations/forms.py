"""Forms of the staff portal.

Times are typed in the location's wall-clock time (a date, a start and an end or a duration)
and turned into aware datetimes here, so a time that does not exist on a date (the spring
forward gap) is a field error instead of a silent shift. The forms only check what the user
typed; whether the slot can be booked is the booking service's call.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from .models import Amenity, Frequency, Location, Profile, Space, SpaceKind, Weekday
from .recurrence import MAX_OCCURRENCES, Recurrence, localize
from .services import Scope

MAX_YEARS_AWAY = 5
DURATIONS = [
    (15, "15 minutes"),
    (30, "30 minutes"),
    (45, "45 minutes"),
    (60, "1 hour"),
    (90, "1 hour 30"),
    (120, "2 hours"),
    (180, "3 hours"),
    (240, "4 hours"),
    (480, "All day (8 hours)"),
]
KIND_CHOICES = [("", "Any kind")] + [
    (value, label) for value, label in SpaceKind.choices if value != SpaceKind.CONTAINER
]
REPEAT_NONE = ""
REPEAT_CHOICES = [
    (REPEAT_NONE, "Does not repeat"),
    (Frequency.DAILY, "Every day"),
    (Frequency.WEEKLY, "Every week, on the days below"),
    (Frequency.MONTHLY_BY_DAY, "Every month, on the same day of the month"),
    (Frequency.MONTHLY_BY_WEEKDAY, "Every month, on the same weekday (e.g. 2nd Tuesday)"),
]
SCOPE_CHOICES = [
    (Scope.THIS, "Only this occurrence"),
    (Scope.FOLLOWING, "This and the following occurrences"),
]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs=None):
        super().__init__({"step": 300, **(attrs or {})}, format="%H:%M")


class ModelSelect(forms.Select):
    """The select of a ``ModelChoiceField`` without a blank choice, whose options are read once.

    Django's ``Select.use_required_attribute`` looks at the first choice, to see whether it is
    a blank placeholder; for a model field without one (``empty_label=None``) that runs the
    options' query a second time only to find a model object: a location's 250 spaces loaded
    twice on every booking form. Without a blank choice the answer is known: no ``required``
    attribute (Django's own answer), so the options are not read for it.
    """

    def use_required_attribute(self, initial) -> bool:
        choices = self.choices
        if (
            isinstance(choices, forms.models.ModelChoiceIterator)
            and choices.field.empty_label is None
        ):
            return False
        return super().use_required_attribute(initial)


class LongSelect(ModelSelect):
    """A select written out in Python: a location's spaces (hundreds of options), and the
    search's few selects, which the find page (the most asked page) renders every time.

    Django's ``Select`` renders every option through two templates (``select_option.html``
    and ``attrs.html``), about 80 µs each: 20 ms of CPU for a location of 250 spaces on every
    booking and reschedule form. The markup is Django's, less the blank lines between the
    options; option groups, which these selects never have, go to Django's own rendering.
    """

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        if any(group for group, _, _ in widget["optgroups"]):
            return super().render(name, value, attrs, renderer)
        parts = [f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
        for _, options, _ in widget["optgroups"]:
            parts += (
                f'\n  <option value="{conditional_escape(str(option["value"]))}"'
                f"{_attrs(option['attrs'])}>{conditional_escape(option['label'])}</option>"
                for option in options
            )
        parts.append("\n</select>")
        return mark_safe("".join(parts))  # noqa: S308 - every value escaped above


def _attrs(attrs: dict) -> str:
    """HTML attributes as Django's ``attrs.html`` writes them (True: the bare name)."""
    return "".join(
        f" {name}" if value is True else f' {name}="{conditional_escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


def aware(day: date, wall: time, zone: ZoneInfo, field: str) -> datetime:
    """``day`` at ``wall`` in ``zone``; a ValidationError on ``field`` if it does not exist."""
    moment = localize(day, wall, zone)
    if moment is None:
        raise ValidationError(
            {field: f"{wall:%H:%M} does not exist on {day:%d %b %Y} (the clocks go forward)."}
        )
    return moment


class SlotFieldsMixin(forms.Form):
    """A date, a start and either an end or a duration, in a location's zone."""

    date = forms.DateField(widget=DateInput())
    start = forms.TimeField(label="From", widget=TimeInput())
    end = forms.TimeField(label="Until", required=False, widget=TimeInput())
    duration = forms.TypedChoiceField(
        label="Duration",
        choices=DURATIONS,
        coerce=int,
        initial=60,
        required=False,
        widget=LongSelect,
    )

    zone: ZoneInfo = ZoneInfo("UTC")

    def clean_date(self) -> date:
        day = self.cleaned_data["date"]
        # Far-off years are typos; they would also overflow date arithmetic (9999-12-31).
        if abs(day.year - date.today().year) > MAX_YEARS_AWAY:
            raise ValidationError("Choose a date within the next few years.")
        return day

    def clean_slot(self) -> None:
        data = self.cleaned_data
        day, start = data.get("date"), data.get("start")
        if day is None or start is None:
            return
        start_at = aware(day, start, self.zone, "start")
        if data.get("end") is not None:
            if data["end"] <= start:
                raise ValidationError({"end": "The end must be after the start."})
            end_at = aware(day, data["end"], self.zone, "end")
        else:
            end_at = start_at + timedelta(minutes=data.get("duration") or 60)
        data["start_at"], data["end_at"] = start_at, end_at


class ReadLocationField(forms.ModelChoiceField):
    """A location choice that takes the Location the view has read already when the value
    names it, instead of reading it again (the find page reads its location first, with its
    opening hours); any other value is looked up as ModelChoiceField does."""

    read: Location | None = None

    def to_python(self, value):
        if self.read is not None and str(value) == str(self.read.pk):
            return self.read
        return super().to_python(value)


class SearchForm(SlotFieldsMixin):
    """Find a space. Bound to GET parameters; every field has a sensible default.
    ``location``: the Location the view has read, if any (its value needs no query then)."""

    location = ReadLocationField(
        queryset=Location.objects.all(), empty_label=None, widget=LongSelect
    )
    capacity = forms.IntegerField(
        label="People", min_value=1, max_value=1000, initial=1, required=False
    )
    kind = forms.ChoiceField(choices=KIND_CHOICES, required=False, widget=LongSelect)
    amenities = forms.ModelMultipleChoiceField(
        queryset=Amenity.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )

    # List or map (``reservations.floormaps``); the floor is picked on the map's own links.
    view = forms.ChoiceField(
        label="Show",
        choices=[("list", "List"), ("map", "Map")],
        required=False,
        initial="list",
        widget=forms.RadioSelect,
    )
    floor = forms.CharField(max_length=50, required=False, widget=forms.HiddenInput)

    field_order = ["location", "date", "start", "duration", "end", "capacity", "kind", "amenities"]

    def __init__(self, *args, location: Location | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].read = location

    def clean(self) -> dict:
        data = super().clean()
        location = data.get("location")
        if location is not None:
            self.zone = location.zone
            self.clean_slot()
        return data


class QuickForm(forms.Form):
    people = forms.IntegerField(min_value=1, max_value=100, initial=1, required=False)


def parse_emails(text: str) -> list[str]:
    """Addresses separated by commas, semicolons, spaces or new lines."""
    for separator in ",;\n\r\t":
        text = text.replace(separator, " ")
    return [part for part in text.split(" ") if part]


class BookingForm(SlotFieldsMixin):
    """Book one space (once or as a series). ``space`` decides the zone and the group field."""

    space = forms.ModelChoiceField(
        queryset=Space.objects.none(), empty_label=None, widget=LongSelect
    )
    title = forms.CharField(max_length=255, required=False)
    public_nickname = forms.CharField(
        label="Public nickname",
        max_length=100,
        required=False,
        help_text="Shown to others instead of your name, where the location uses nicknames.",
    )
    description = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    requested_for = forms.ModelChoiceField(
        label="Book for",
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="Myself",
        help_text="Book on behalf of a colleague; they become the owner of the booking.",
    )
    attendees = forms.CharField(
        label="Group attendees",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "ana@example.com, li@example.com"}),
        help_text="Email addresses, separated by commas or new lines. Leave empty for a "
        "normal booking.",
    )
    repeat = forms.ChoiceField(label="Repeat", choices=REPEAT_CHOICES, required=False)
    interval = forms.IntegerField(
        label="Every",
        min_value=1,
        max_value=12,
        initial=1,
        # Read with its unit ("Every 1 week(s)"), shown after the box.
        widget=forms.NumberInput(
            attrs={"aria-describedby": "interval-unit", "class": "every-count"}
        ),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="On",
        choices=[(value, label[:3]) for value, label in Weekday.choices],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    # "Ends on", not "Until": the booking's own end time is already labelled "Until".
    until = forms.DateField(label="Ends on", required=False, widget=DateInput())
    count = forms.IntegerField(
        label="Or number of times", min_value=1, max_value=MAX_OCCURRENCES, required=False
    )

    def __init__(self, *args, user, space: Space | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fixed_space = space
        spaces = Space.objects.filter(is_reservable=True).exclude(kind=SpaceKind.CONTAINER)
        if space is not None:
            spaces = spaces.filter(location_id=space.location_id)
            self.fields["space"].initial = space.pk
            self.zone = space.location.zone
        self.fields["space"].queryset = spaces.select_related("location")
        if user.has_perm("reservations.book_on_behalf") or user.has_perm("reservations.manage_all"):
            self.fields["requested_for"].queryset = (
                get_user_model().objects.filter(is_active=True).exclude(pk=user.pk)
            )
            self.fields["requested_for"].label_from_instance = _person_label
        else:
            del self.fields["requested_for"]
        if space is None or not space.allows_group:
            del self.fields["attendees"]
        if not self.is_bound:
            # "Every week on ..." starts on the first date's weekday, as calendars do.
            first = _initial_date(self.initial.get("date"))
            if first is not None:
                self.fields["weekdays"].initial = [first.weekday()]

    def interval_unit(self) -> str:
        """What "Every <n>" counts for the chosen repetition (the page's script follows
        the select; this is the text before it runs, or without it)."""
        repeat = self["repeat"].value() or ""
        if repeat == Frequency.DAILY:
            return "day(s)"
        if repeat.startswith("monthly"):
            return "month(s)"
        return "week(s)"

    @property
    def can_book_on_behalf(self) -> bool:
        return "requested_for" in self.fields

    def clean_attendees(self) -> list[str]:
        emails = parse_emails(self.cleaned_data.get("attendees") or "")
        bad = []
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                bad.append(email)
        if bad:
            raise ValidationError(f"Not an email address: {', '.join(bad)}.")
        return emails

    def clean(self) -> dict:
        data = super().clean()
        space = data.get("space")
        if space is not None:
            self.zone = space.location.zone
            if self.fixed_space is not None and space.location_id != self.fixed_space.location_id:
                self.add_error("space", "Choose a space in the same location.")
        if not self.errors:
            try:
                self.clean_slot()
            except ValidationError as exc:
                self.add_error(None, exc)
        repeat = data.get("repeat")
        if repeat:
            if data.get("until") is None and data.get("count") is None:
                self.add_error("until", "Choose an end date or a number of times.")
            elif data.get("until") and data.get("date") and data["until"] < data["date"]:
                self.add_error("until", "The series cannot end before its first date.")
            if repeat == Frequency.WEEKLY and not data.get("weekdays") and data.get("date"):
                data["weekdays"] = [data["date"].weekday()]
        return data

    def recurrence(self) -> Recurrence | None:
        data = self.cleaned_data
        if not data.get("repeat"):
            return None
        return Recurrence(
            frequency=data["repeat"],
            interval=data.get("interval") or 1,
            weekdays=tuple(data.get("weekdays") or ()),
            until=data.get("until"),
            count=data.get("count"),
        )


def _initial_date(value) -> date | None:
    """The booking form's prefilled date (a date, or the ISO string from a link), or None."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _person_label(user) -> str:
    name = user.get_full_name() or user.get_username()
    return f"{name} ({user.email})" if user.email else name


class ChangeForm(SlotFieldsMixin):
    """Reschedule or edit one occurrence (or this and the following ones)."""

    space = forms.ModelChoiceField(
        queryset=Space.objects.none(), empty_label=None, widget=LongSelect
    )
    title = forms.CharField(max_length=255, required=False)
    public_nickname = forms.CharField(label="Public nickname", max_length=100, required=False)
    description = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    scope = forms.ChoiceField(
        label="Apply to", choices=SCOPE_CHOICES, initial=Scope.THIS, widget=forms.RadioSelect
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, reservation, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        location = reservation.space.location
        self.zone = location.zone
        self.fields["space"].queryset = (
            Space.objects.filter(location=location, is_reservable=True)
            .exclude(kind=SpaceKind.CONTAINER)
            .select_related("location")
        )
        if not reservation.series_id:
            del self.fields["scope"]
        del self.fields["duration"]
        self.fields["end"].required = True

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:
            try:
                self.clean_slot()
            except ValidationError as exc:
                self.add_error(None, exc)
        return data


class CancelForm(forms.Form):
    scope = forms.ChoiceField(
        label="Cancel", choices=SCOPE_CHOICES, initial=Scope.THIS, widget=forms.RadioSelect
    )
    reason = forms.CharField(label="Reason", max_length=255, required=False)
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, reservation, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not reservation.series_id:
            del self.fields["scope"]


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        label="Your time zone",
        required=False,
        help_text="Bookings are always shown in the location's time; when your zone differs, "
        "your own time is shown next to it.",
    )

    class Meta:
        model = Profile
        fields = ["time_zone", "default_location", "email_reminders"]
        labels = {"default_location": "Default location", "email_reminders": "Reminder emails"}
        # One help text a field, tied to it (the model's is the admin's shorter one).
        help_texts = {
            "default_location": "Where “Find a space”, the schedule and quick reservations start."
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        import zoneinfo

        zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z and "Etc" not in z)
        self.fields["time_zone"].choices = [
            ("", "Site default"),
            *((z, z) for z in zones),
            ("UTC", "UTC"),
        ]
        self.fields["default_location"].empty_label = "No default"
        minutes = settings.BOOKING_REMINDER_MINUTES
        if minutes > 0:
            self.fields[
                "email_reminders"
            ].help_text = f"Email me {minutes} minutes before each of my bookings starts."
        else:  # reminders are off for everyone: nothing to choose
            del self.fields["email_reminders"]
