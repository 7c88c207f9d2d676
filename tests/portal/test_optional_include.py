"""optional_include: nothing for a template no app provides, else its markup."""

from __future__ import annotations

from django.conf import settings
from django.template import Context, Template
from django.test import override_settings

PAGE = Template('{% load portal %}[{% optional_include "extra/optional_part.html" %}]')


def test_a_missing_template_renders_nothing_until_the_templates_change(tmp_path):
    assert PAGE.render(Context({"who": "Ada"})) == "[]"
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "optional_part.html").write_text("Hello {{ who }}")
    engine = {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    with override_settings(TEMPLATES=[engine]):
        assert PAGE.render(Context({"who": "Ada"})) == "[Hello Ada]"
