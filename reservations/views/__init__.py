"""The staff portal: find a space, book, the schedule (event planner), my reservations.

Every write goes through ``reservations.services``; the views turn its refusals
(``BookingError`` and subclasses) into messages next to the right field.
"""
