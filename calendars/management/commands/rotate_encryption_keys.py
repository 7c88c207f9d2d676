"""Re-encrypt every stored secret with the newest key in FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from calendars.crypto import PREFIX, EncryptedTextField, rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt all secrets with the first key of FIELD_ENCRYPTION_KEYS. Run it after "
        "putting a new key first; then the old keys can be removed."
    )

    def handle(self, *args, **options) -> None:
        total = 0
        for model in apps.get_models():
            columns = [
                f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
            ]
            if columns:
                with transaction.atomic():
                    total += _rotate_table(model._meta.db_table, model._meta.pk.column, columns)
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted secrets in {total} row(s)."))


def _rotate_table(table: str, pk: str, columns: list[str]) -> int:
    """Rotate the raw (still encrypted) column values; the ORM would decrypt them."""
    q = connection.ops.quote_name
    selected = ", ".join(q(c) for c in [pk, *columns])
    changed = 0
    with connection.cursor() as cursor:
        # Identifiers come from the model's own metadata, never from input.
        cursor.execute(f"SELECT {selected} FROM {q(table)}")  # noqa: S608
        for row_pk, *values in cursor.fetchall():
            updates = {
                column: rotate(value)
                for column, value in zip(columns, values, strict=True)
                if value and value.startswith(PREFIX)
            }
            if not updates:
                continue
            assignments = ", ".join(f"{q(c)} = %s" for c in updates)
            cursor.execute(
                f"UPDATE {q(table)} SET {assignments} WHERE {q(pk)} = %s",  # noqa: S608
                [*updates.values(), row_pk],
            )
            changed += 1
    return changed
