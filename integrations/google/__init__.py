"""Google Calendar: the provider client (``client.py``), the service-account and personal
token handling (``auth.py``), the OAuth web-server flow (``oauth.py``), the event mapping
(``mapping.py``), the batch wire format (``multipart.py``) and Google's errors in Reserva's
classes (``errors.py``). No Django and no ORM here.
"""
