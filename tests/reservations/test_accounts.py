"""``PermissionsBackend``: a person's permissions in one query, with ModelBackend's answers."""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def fresh(user):
    return get_user_model().objects.get(pk=user.pk)  # no permission cache


@pytest.fixture
def approver_group():
    group = Group.objects.create(name="Facilities")
    group.permissions.add(permission("reservations.view_insights"))
    return group


@pytest.mark.parametrize("kind", ["own and group", "inactive", "superuser", "none"])
def test_the_permissions_are_those_model_backend_finds(make_user, approver_group, kind):
    user = make_user(perms=("reservations.manage_all",))
    user.groups.add(approver_group)
    if kind == "inactive":
        user.is_active = False
    elif kind == "superuser":
        user.is_superuser = True
    elif kind == "none":
        user.user_permissions.clear()
        user.groups.clear()
    user.save()
    expected = ModelBackend().get_all_permissions(fresh(user))
    person = fresh(user)
    assert person.get_all_permissions() == expected
    for name in ("reservations.manage_all", "reservations.view_insights", "reservations.nope"):
        assert person.has_perm(name) == (name in expected or kind == "superuser")
    if kind == "own and group":
        assert expected == {"reservations.manage_all", "reservations.view_insights"}


def test_a_page_reads_the_permissions_in_one_query(client, make_user, approver_group):
    user = make_user(perms=("reservations.manage_all",))
    user.groups.add(approver_group)
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        body = client.get(reverse("portal:mine")).content.decode()
    assert "Insights" in body and "Approvals" in body  # a group's and the person's own
    assert sum('FROM "auth_permission"' in q["sql"] for q in queries) == 1


def test_it_signs_nobody_in_and_sessions_of_the_other_backends_still_work(client, make_user):
    make_user("carol")  # password "pw"
    response = client.post("/accounts/login/", {"login": "carol", "password": "pw"})
    assert response.status_code == 302
    assert client.session[BACKEND_SESSION_KEY] != "reservations.accounts.PermissionsBackend"
    client.logout()
    client.force_login(fresh(get_user_model().objects.get(username="carol")), MODEL_BACKEND)
    assert client.get(reverse("portal:mine")).status_code == 200
