"""Every registered client implements ``integrations.base.CalendarClient`` exactly.

The engine calls every client the same way, so a client whose method drifts from the
Protocol (a parameter renamed, reordered, added or dropped, given another default or
annotation, a method missing) must fail here rather than at the first sync that takes that
path. ``isinstance`` against the Protocol would only check that the names exist.
"""

from __future__ import annotations

import inspect
from types import FunctionType

import pytest

from integrations.base import CalendarClient
from integrations.registry import PROVIDERS, client_class

METHODS = [
    name
    for name, value in vars(CalendarClient).items()
    if not name.startswith("_") and isinstance(value, FunctionType | staticmethod)
]
ATTRIBUTES = [
    name
    for name, annotation in CalendarClient.__annotations__.items()
    if str(annotation).startswith("ClassVar")
]


def _shape(function) -> list[tuple]:
    """What a caller relies on: each parameter's name, kind, default and annotation (``self``
    aside: a mixin annotates it with the client's class), and the return annotation."""
    signature = inspect.signature(function)
    shape = [
        (p.name, p.kind, p.default, None if p.name == "self" else p.annotation)
        for p in signature.parameters.values()
    ]
    return [*shape, ("return", signature.return_annotation)]


def test_the_protocol_is_read_whole():
    assert len(METHODS) == 14
    assert {"test_connection", "create_event", "changes", "free_busy", "made_by_create"} <= set(
        METHODS
    )
    assert ATTRIBUTES == ["reads_tags_by_id", "window_moves_look_removed"]


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
@pytest.mark.parametrize("name", METHODS)
def test_every_method_has_the_protocols_signature(kind, name):
    cls = client_class(kind)
    assert callable(getattr(cls, name, None)), f"{cls.__name__} has no {name}"
    expected = inspect.getattr_static(CalendarClient, name)
    assert isinstance(inspect.getattr_static(cls, name), staticmethod) == isinstance(
        expected, staticmethod
    )
    assert _shape(getattr(cls, name)) == _shape(getattr(CalendarClient, name))


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
@pytest.mark.parametrize("name", ATTRIBUTES)
def test_every_class_attribute_is_set(kind, name):
    assert isinstance(getattr(client_class(kind), name, None), bool)


def test_a_drifted_signature_is_caught():
    """The comparison can fail: each kind of drift, one at a time, shows."""
    protocol = inspect.signature(CalendarClient.update_event)
    # self, ref, event_id, data, version="", as_user=None
    self, ref, event_id, data, version, as_user = protocol.parameters.values()
    drifts = {
        "renamed": [self, ref.replace(name="calendar"), event_id, data, version, as_user],
        "reordered": [self, event_id, ref, data, version, as_user],
        "another default": [self, ref, event_id, data, version.replace(default=None), as_user],
        "another annotation": [self, ref, event_id.replace(annotation="int"), data, version],
        "dropped": [self, ref, event_id, data, version],
        "keyword-only": [
            self,
            ref,
            event_id,
            data,
            version,
            as_user.replace(kind=inspect.Parameter.KEYWORD_ONLY),
        ],
    }

    def method(*args, **kwargs): ...

    method.__signature__ = protocol
    assert _shape(method) == _shape(CalendarClient.update_event)
    for drift, parameters in drifts.items():
        method.__signature__ = protocol.replace(parameters=parameters)
        assert _shape(method) != _shape(CalendarClient.update_event), drift
