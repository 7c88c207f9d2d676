"""Migration 0006 hashes the feed keys already issued in place: subscribed URLs keep working."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reservations.models import FeedToken

BEFORE = ("reservations", "0005_integration_and_feeds")


@pytest.mark.django_db(transaction=True)
def test_existing_feed_urls_keep_working_after_the_keys_are_hashed(client, make_space):
    space = make_space()
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old_apps = executor.loader.project_state([BEFORE]).apps
    old_key = "k" * 43
    old_apps.get_model("reservations", "FeedToken").objects.create(key=old_key, space_id=space.pk)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # 0006_feed_key_hashed and the rest

    token = FeedToken.objects.get(space=space)
    assert token.key_hash != old_key and old_key not in token.key_hash
    assert client.get(f"/feeds/{old_key}.ics").status_code == 200
    assert client.get(f"/feeds/{token.key_hash}.ics").status_code == 404  # the hash is no key
