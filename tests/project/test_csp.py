"""The Content-Security-Policy header (django-csp) on the portal, the admin and the API docs,
and templates that need no exception in it (the browser check: portal/test_csp_browser.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy", "")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {part[0]: part[1:] for part in parts}


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/api/docs/"])
def test_pages_carry_a_policy_without_inline_script_or_style(client, url):
    policy = directives(client.get(url))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)


def test_signed_in_pages_carry_the_policy(client, make_user):
    client.force_login(make_user())
    for url in ("/", "/schedule/", "/my/", "/profile/"):
        assert directives(client.get(url))["script-src"] == ["'self'"], url


def test_swagger_page_loads_its_start_up_script_as_a_file(client):
    page = client.get("/api/docs/").content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # every script has a src
    assert "<style" not in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "javascript" in script["Content-Type"]
    assert "SwaggerUIBundle(" in script.content.decode()


INLINE = re.compile(
    r"""\sstyle=|<style|\son[a-z]+=|<script(?![^>]*\b(src=|type="application/json"))""",
    re.IGNORECASE,
)


# Emails are read in mail clients, which keep only inline styles and never see the policy;
# they may have style attributes, but never a script.
NOT_SERVED = ("templates/emails/",)
SCRIPT = re.compile(r"""\son[a-z]+=|<script""", re.IGNORECASE)


def test_no_template_needs_inline_script_or_style():
    """The policy allows neither: a template with one would break under it."""
    offenders = []
    for folder in ("templates", "calendars/templates", "reservations/templates"):
        for path in sorted((ROOT / folder).rglob("*.html")):
            email = str(path.relative_to(ROOT)).startswith(NOT_SERVED)
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if (SCRIPT if email else INLINE).search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_report_only_mode_and_report_uri_from_the_environment(tmp_path):
    """CSP_REPORT_ONLY=true sends the same policy as Content-Security-Policy-Report-Only (to
    try a stricter or extended policy on a live site first), reporting to CSP_REPORT_URI."""
    probe = (
        "from django.test import Client; r = Client().get('/api/docs/'); "
        "print(r.headers.get('Content-Security-Policy', '-')); "
        "print(r.headers.get('Content-Security-Policy-Report-Only', '-'))"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CSP_REPORT_ONLY": "true",
        "CSP_REPORT_URI": "https://reports.example.com/csp",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    enforced, report_only = result.stdout.strip().splitlines()[-2:]
    assert enforced == "-", result.stderr
    assert "script-src 'self'" in report_only
    assert "report-uri https://reports.example.com/csp" in report_only
