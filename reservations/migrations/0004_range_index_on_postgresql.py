"""PostgreSQL only: a GiST index on the reservation's time range, for "what is busy at this
hour, across all spaces" (``queries.free_spaces``, the day schedule).

The exclusion constraint's index (0002) leads with space_id, so it serves "clashes in this
space" but not a search across spaces: the planner either probes it once per space or scans
most of it. This index holds only slot-holding rows, like the constraint, and the queries write
the overlap as the same ``tstzrange(start, "end", '[)') &&`` expression so it matches.

PostgreSQL keeps no statistics for the expressions of a partial index, so without the
statistics object it guesses 1% of the table overlaps any hour (thousands of rows instead of a
few hundred) and picks a nested loop over the spaces; with it, a hash anti-join.

SQLite has no GiST; there the (space, start, end) B-tree from 0001 is used.
"""

from django.db import migrations

CREATE = [
    """
    CREATE INDEX IF NOT EXISTS reservation_slot_range
        ON reservations_reservation USING gist (tstzrange("start", "end", '[)'))
        WHERE (status IN ('pending', 'confirmed'))
    """,
    """
    CREATE STATISTICS IF NOT EXISTS reservation_slot_range_stats
        ON (tstzrange("start", "end", '[)')) FROM reservations_reservation
    """,
    "ANALYZE reservations_reservation",
]
DROP = [
    "DROP STATISTICS IF EXISTS reservation_slot_range_stats",
    "DROP INDEX IF EXISTS reservation_slot_range",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("reservations", "0003_profile")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
