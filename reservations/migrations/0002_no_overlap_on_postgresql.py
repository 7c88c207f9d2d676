"""PostgreSQL only: an exclusion constraint so no two slot-holding reservations of one space
overlap, whatever writes the row. SQLite cannot parse it; there the booking service's
serialized (IMMEDIATE) transaction gives the same guarantee.

btree_gist lets a GiST index combine equality on space_id with range overlap; it is a trusted
extension (PostgreSQL 13+), so a database owner may create it without superuser rights.
"""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE reservations_reservation
    ADD CONSTRAINT reservation_no_overlap
    EXCLUDE USING gist (space_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (status IN ('pending', 'confirmed'));
"""
DROP = "ALTER TABLE reservations_reservation DROP CONSTRAINT IF EXISTS reservation_no_overlap;"


class PostgreSQLOnly(migrations.RunSQL):
    """RunSQL that does nothing on other database vendors."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("reservations", "0001_initial")]
    operations = [PostgreSQLOnly(CREATE, DROP)]
