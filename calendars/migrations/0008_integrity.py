"""A room calendar syncs with at most one space (issue 12): two unique constraints on the
enabled bindings. A database bound twice already keeps the oldest binding of each calendar
enabled and switches the later ones off (their rows stay, for the admin to see)."""

import logging

import django.db.models.functions.text
from django.db import migrations, models

log = logging.getLogger(__name__)


def disable_second_bindings(apps, schema_editor):
    SpaceCalendar = apps.get_model("calendars", "SpaceCalendar")
    seen: set[tuple] = set()
    for binding in SpaceCalendar.objects.filter(enabled=True).order_by("pk"):
        keys = {
            (binding.provider_id, "address", binding.resource_email.lower(), binding.calendar_id)
        }
        if binding.calendar_id:
            keys.add((binding.provider_id, "id", binding.calendar_id))
        if keys & seen:
            SpaceCalendar.objects.filter(pk=binding.pk).update(enabled=False)
            log.warning(
                "space calendar %s reads a calendar another space is bound to: switched off",
                binding.pk,
            )
            continue
        seen |= keys


class Migration(migrations.Migration):
    dependencies = [
        ("calendars", "0007_sync_lock"),
    ]

    operations = [
        migrations.RunPython(disable_second_bindings, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="spacecalendar",
            constraint=models.UniqueConstraint(
                models.F("provider"),
                django.db.models.functions.text.Lower("resource_email"),
                models.F("calendar_id"),
                condition=models.Q(("enabled", True)),
                name="one_space_per_room_calendar",
                violation_error_message="This room calendar is already bound to another space.",
            ),
        ),
        migrations.AddConstraint(
            model_name="spacecalendar",
            constraint=models.UniqueConstraint(
                models.F("provider"),
                models.F("calendar_id"),
                condition=models.Q(("enabled", True), models.Q(("calendar_id", ""), _negated=True)),
                name="one_space_per_calendar_id",
                violation_error_message="This calendar is already bound to another space.",
            ),
        ),
    ]
