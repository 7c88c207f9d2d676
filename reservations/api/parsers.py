"""The API's JSON parser: DRF's, with a body nested too deeply for Python's decoder (e.g. a
hundred thousand ``[``) answered as the 400 every other malformed body gets.

DRF's parser turns a ``ValueError`` into a ``ParseError`` but lets the decoder's
``RecursionError`` through, which became a 500 (and an HTML page).
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser


class JSONParser(DRFJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc
