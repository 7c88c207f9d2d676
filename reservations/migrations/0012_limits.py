"""Limits per person: ``BookingLimit`` rows per location, for everyone or one group
(``reservations.limits``). At most one everyone row and one row per group at a location."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("reservations", "0011_approvals"),
    ]

    operations = [
        migrations.CreateModel(
            name="BookingLimit",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "max_active_bookings",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="At most this many bookings at the location that hold their slot and have not ended yet, per person (a series counts each date). Empty: no limit of its own.",
                        null=True,
                    ),
                ),
                (
                    "max_hours_per_week",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="At most this many booked hours at the location per person in one week (Monday to Sunday in the location's time zone, the week of the booking). Empty: no limit.",
                        null=True,
                    ),
                ),
                (
                    "min_notice_minutes",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Bookings must be made at least this many minutes before they start, e.g. 15; 0 for none. Not applied to bookings made in Outlook or Google.",
                        null=True,
                    ),
                ),
                (
                    "booking_window_days",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="How many days ahead these people may book, instead of the location's horizon (longer or shorter: e.g. staff 14, facilities 365). Empty: the location's horizon.",
                        null=True,
                    ),
                ),
                (
                    "no_overlap_rooms",
                    models.BooleanField(
                        blank=True,
                        help_text="Refuse a room booking that overlaps another room booking of the same person. Unknown: as the everyone row, else off.",
                        null=True,
                    ),
                ),
                (
                    "no_overlap_desks",
                    models.BooleanField(
                        blank=True,
                        help_text="Refuse a desk or seat booking that overlaps another desk or seat booking of the same person. Unknown: as the everyone row, else on.",
                        null=True,
                    ),
                ),
                (
                    "group",
                    models.ForeignKey(
                        blank=True,
                        help_text="Empty: everyone at the location. A group's row overrides the everyone row for its members, field by field where it sets a value; for someone in several groups with rows, the most generous value of those groups wins.",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="booking_limits",
                        to="auth.group",
                    ),
                ),
                (
                    "location",
                    models.ForeignKey(
                        help_text="The location whose bookings these limits count and refuse.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="booking_limits",
                        to="reservations.location",
                    ),
                ),
            ],
            options={
                "ordering": ["location", "group__name"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("group__isnull", False)),
                        fields=("location", "group"),
                        name="one_booking_limit_per_group",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("group__isnull", True)),
                        fields=("location",),
                        name="one_booking_limit_for_everyone",
                    ),
                ],
            },
        ),
    ]
