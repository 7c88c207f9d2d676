"""Microsoft 365 (Exchange Online through Microsoft Graph) for Reserva.

``client.MicrosoftClient`` is the provider client (the only module that knows Graph's HTTP
and JSON shapes, with ``mapping`` and ``errors`` for the JSON and error translation);
``auth`` gets tokens through msal; ``oauth`` runs the delegated authorization-code flow.
No Django, no ORM: plain values in, ``integrations.base`` dataclasses out.
"""
