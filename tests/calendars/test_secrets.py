"""Secrets at rest: encrypted columns, write-only admin fields, key rotation."""

import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from calendars import crypto
from calendars.models import (
    CalendarProvider,
    ConnectionAlias,
    CredentialAlias,
    ProviderKind,
    UserToken,
)

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Value~with.symbols"
PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
)
SERVICE_KEY = {
    "type": "service_account",
    "client_email": "sync@project.iam.gserviceaccount.com",
    "private_key": PRIVATE_KEY,
}


def raw_column(model, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def credential():
    return CredentialAlias.objects.create(
        name="Contoso",
        kind=ProviderKind.MICROSOFT,
        tenant_id="contoso.example",
        client_id="app-1",
        client_secret=SECRET,
    )


def test_secrets_are_encrypted_in_the_database(credential, make_user):
    google = CredentialAlias.objects.create(
        name="G", kind=ProviderKind.GOOGLE, service_account_key=SERVICE_KEY
    )
    raw_secret = raw_column(CredentialAlias, "client_secret", credential.pk)
    raw_key = raw_column(CredentialAlias, "service_account_key", google.pk)
    assert raw_secret.startswith("fernet:") and SECRET not in raw_secret
    assert "PRIVATE KEY" not in raw_key and "sync@project" not in raw_key
    assert CredentialAlias.objects.get(pk=credential.pk).client_secret == SECRET
    assert CredentialAlias.objects.get(pk=google.pk).service_account_key == SERVICE_KEY

    connection_alias = ConnectionAlias.objects.create(name="c", kind=ProviderKind.MICROSOFT)
    provider = CalendarProvider.objects.create(
        name="M365", kind=ProviderKind.MICROSOFT, connection=connection_alias, credential=credential
    )
    token = UserToken.objects.create(
        user=make_user(),
        provider=provider,
        account_email="a@example.com",
        token={"RefreshToken": {"x": {"secret": "rt-123"}}},
    )
    assert "rt-123" not in raw_column(UserToken, "token", token.pk)


def test_admin_never_shows_a_stored_secret(client, make_user, credential):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    for url in (
        reverse("admin:calendars_credentialalias_changelist"),
        reverse("admin:calendars_credentialalias_change", args=[credential.pk]),
    ):
        page = client.get(url).content.decode()
        assert SECRET not in page and "fernet:" not in page
    assert "A secret is stored; leave empty to keep it." in page


def test_admin_secret_is_write_only_keep_replace_clear(client, make_user, credential):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    url = reverse("admin:calendars_credentialalias_change", args=[credential.pk])
    form = {
        "name": "Contoso",
        "kind": "microsoft",
        "tenant_id": "contoso.example",
        "client_id": "app-1",
        "scopes": "",
        "new_client_secret": "",
        "new_service_account_key": "",
    }
    assert client.post(url, form).status_code == 302
    assert CredentialAlias.objects.get().client_secret == SECRET  # empty input keeps it
    client.post(url, {**form, "new_client_secret": "rotated"})
    assert CredentialAlias.objects.get().client_secret == "rotated"
    client.post(url, {**form, "clear_client_secret": "on"})
    assert CredentialAlias.objects.get().client_secret == ""


def test_admin_refuses_a_key_that_is_not_a_service_account_key(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:calendars_credentialalias_add"),
        {
            "name": "G",
            "kind": "google",
            "tenant_id": "",
            "client_id": "",
            "scopes": "",
            "new_client_secret": "",
            "new_service_account_key": json.dumps({"type": "user"}),
        },
    )
    assert response.status_code == 200
    assert "This is not a Google service-account key" in response.content.decode()
    assert not CredentialAlias.objects.exists()


def test_key_rotation_re_encrypts_with_the_newest_key(settings, credential):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    before = raw_column(CredentialAlias, "client_secret", credential.pk)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", verbosity=0)
    after = raw_column(CredentialAlias, "client_secret", credential.pk)
    assert after != before
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert CredentialAlias.objects.get(pk=credential.pk).client_secret == SECRET


def test_a_missing_key_is_a_clear_error_without_the_value(settings, credential):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError, match="cannot be decrypted") as err:
        CredentialAlias.objects.get(pk=credential.pk)
    assert SECRET not in str(err.value)
