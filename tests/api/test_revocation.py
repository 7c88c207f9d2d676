"""Deactivating a user revokes their calendar feeds and OAuth API tokens, whatever the path
(the admin, the ORM, ``manage.py shell``), and reactivating them brings none of it back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken

from reservations import feeds
from reservations.models import FeedToken

pytestmark = pytest.mark.django_db


def personal_tokens(user, application) -> None:
    """An access + refresh token issued to ``user`` (as an authorization-code grant would)."""
    access = AccessToken.objects.create(
        user=user,
        application=application,
        token=f"personal-access-{user.pk}",
        expires=timezone.now() + timedelta(hours=1),
        scope="read",
    )
    RefreshToken.objects.create(
        user=user, application=application, token=f"personal-refresh-{user.pk}", access_token=access
    )


def deactivate_in_admin(admin_client, user) -> None:
    response = admin_client.post(
        "/admin/auth/user/", {"action": "deactivate", "_selected_action": [user.pk]}
    )
    assert response.status_code == 302


def deactivate_with_save(admin_client, user) -> None:
    user.is_active = False
    user.save()


def deactivate_in_shell(admin_client, user) -> None:
    call_command(
        "shell",
        command=(
            "from django.contrib.auth import get_user_model; "
            f"u = get_user_model().objects.get(pk={user.pk}); u.is_active = False; u.save()"
        ),
    )


@pytest.mark.parametrize(
    "deactivate", [deactivate_in_admin, deactivate_with_save, deactivate_in_shell]
)
def test_deactivating_revokes_feeds_and_api_tokens(
    deactivate, admin_client, api, make_user, make_integration, get_token
):
    integration = make_integration()  # an API client owned by the user who leaves
    leaver = integration.user
    bearer = get_token(integration)
    personal_tokens(leaver, make_integration().application)
    feed_key = feeds.issue(user=leaver).key
    stayer = make_integration()
    stayer_bearer = get_token(stayer)
    stayer_feed = feeds.issue(user=stayer.user).key
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert api.get("/api/v1/locations/").status_code == 200

    deactivate(admin_client, leaver)

    assert not AccessToken.objects.filter(application=integration.application).exists()
    assert not AccessToken.objects.filter(user=leaver).exists()
    assert not RefreshToken.objects.filter(user=leaver).exists()
    assert FeedToken.objects.get(user=leaver).revoked_at is not None
    # Revoked, not hidden: bringing the account back brings back neither.
    leaver.refresh_from_db()
    leaver.is_active = True
    leaver.save()
    assert api.get("/api/v1/locations/").status_code == 401
    assert admin_client.get(f"/feeds/{feed_key}.ics").status_code == 404
    # Nobody else loses anything.
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {stayer_bearer}")
    assert api.get("/api/v1/locations/").status_code == 200
    assert admin_client.get(f"/feeds/{stayer_feed}.ics").status_code == 200
    assert Application.objects.filter(pk=integration.application.pk).exists()  # kept


def test_saving_an_active_user_or_their_last_login_revokes_nothing(make_user):
    user = make_user()
    feeds.issue(user=user)
    user.first_name = "Still here"
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert FeedToken.objects.get(user=user).revoked_at is None
    assert feeds.active_token(user=user) is not None


def test_a_deactivated_owner_s_client_gets_no_new_token(api, make_integration, get_token):
    """The client's secret stays in the database; it must not mint tokens meanwhile (they
    would work again the day the account is reactivated)."""
    integration = make_integration()
    get_token(integration)
    integration.user.is_active = False
    integration.user.save()

    refused = api.post(
        "/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=integration.basic()
    )

    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert not AccessToken.objects.filter(application=integration.application).exists()
    integration.user.is_active = True
    integration.user.save()
    assert get_token(integration)  # back in service: the same secret works again
