"""Setup and cleanup buffers per space, and the buffered range every booking keeps.

``buffered_start``/``buffered_end`` are stored (not computed in the constraint) because an
exclusion constraint can only read the row itself, not the space's buffers. Existing bookings
get their booked times (every buffer is 0 until an admin sets one), in three steps so the
columns are never NULL once the constraint reads them: a NULL bound would be an unbounded
range, overlapping everything.

On PostgreSQL the exclusion constraint (0002) and the range index (0004) move to the buffered
range, under their old names, and the queries write the same ``tstzrange(buffered_start,
buffered_end, '[)')`` expression so the planner still uses them.
"""

import django.core.validators
from django.db import migrations, models

CREATE = [
    "ALTER TABLE reservations_reservation DROP CONSTRAINT IF EXISTS reservation_no_overlap",
    """
    ALTER TABLE reservations_reservation
        ADD CONSTRAINT reservation_no_overlap
        EXCLUDE USING gist (
            space_id WITH =, tstzrange(buffered_start, buffered_end, '[)') WITH &&
        )
        WHERE (status IN ('pending', 'confirmed'))
    """,
    "DROP STATISTICS IF EXISTS reservation_slot_range_stats",
    "DROP INDEX IF EXISTS reservation_slot_range",
    """
    CREATE INDEX reservation_slot_range
        ON reservations_reservation USING gist (tstzrange(buffered_start, buffered_end, '[)'))
        WHERE (status IN ('pending', 'confirmed'))
    """,
    """
    CREATE STATISTICS reservation_slot_range_stats
        ON (tstzrange(buffered_start, buffered_end, '[)')) FROM reservations_reservation
    """,
    "ANALYZE reservations_reservation",
]
DROP = [
    "ALTER TABLE reservations_reservation DROP CONSTRAINT IF EXISTS reservation_no_overlap",
    """
    ALTER TABLE reservations_reservation
        ADD CONSTRAINT reservation_no_overlap
        EXCLUDE USING gist (space_id WITH =, tstzrange("start", "end", '[)') WITH &&)
        WHERE (status IN ('pending', 'confirmed'))
    """,
    "DROP STATISTICS IF EXISTS reservation_slot_range_stats",
    "DROP INDEX IF EXISTS reservation_slot_range",
    """
    CREATE INDEX reservation_slot_range
        ON reservations_reservation USING gist (tstzrange("start", "end", '[)'))
        WHERE (status IN ('pending', 'confirmed'))
    """,
    """
    CREATE STATISTICS reservation_slot_range_stats
        ON (tstzrange("start", "end", '[)')) FROM reservations_reservation
    """,
]


def fill_buffered_range(apps, schema_editor):
    Reservation = apps.get_model("reservations", "Reservation")
    Reservation.objects.update(buffered_start=models.F("start"), buffered_end=models.F("end"))


def constraint_on_buffered_range(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def constraint_on_booked_range(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


BUFFER_VALIDATORS = [django.core.validators.MaxValueValidator(240)]


class Migration(migrations.Migration):
    dependencies = [("reservations", "0008_closures")]

    operations = [
        migrations.AddField(
            model_name="space",
            name="setup_minutes",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text=(
                    "Minutes kept free before every booking to set the space up (at most "
                    "240). Nobody else can book them; people and calendars see the booked "
                    "times only. A change applies to bookings made or moved from then on."
                ),
                validators=BUFFER_VALIDATORS,
            ),
        ),
        migrations.AddField(
            model_name="space",
            name="cleanup_minutes",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text=(
                    "Minutes kept free after every booking to clean or reset the space (at "
                    "most 240). A change applies to bookings made or moved from then on."
                ),
                validators=BUFFER_VALIDATORS,
            ),
        ),
        migrations.AddField(
            model_name="reservation",
            name="buffered_start",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="reservation",
            name="buffered_end",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.RunPython(fill_buffered_range, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="reservation",
            name="buffered_start",
            field=models.DateTimeField(editable=False),
        ),
        migrations.AlterField(
            model_name="reservation",
            name="buffered_end",
            field=models.DateTimeField(editable=False),
        ),
        migrations.RunPython(
            constraint_on_buffered_range, constraint_on_booked_range, elidable=False
        ),
    ]
