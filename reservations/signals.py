"""Documented signals the booking service sends after the transaction commits.

Every signal is sent with ``sender=Reservation`` and these keyword arguments:

- ``reservation_ids``: list of ids affected (several for a series operation), in start order;
- ``actor_id``: the user who acted (None for background sync);
- ``source``: a ``Source`` value, where the change came from;
- ``changes`` (``reservation_changed`` only): field name -> (old, new) of the first occurrence;
- ``no_show`` (only when true): the booking was released or cancelled because nobody checked
  in (``reservations.checkin``); its person, or its organizer, is told so whatever its source.

Receivers run after commit, so they see the committed rows and may enqueue Celery work.
"""

from django.dispatch import Signal

reservation_created = Signal()
reservation_changed = Signal()
reservation_cancelled = Signal()
