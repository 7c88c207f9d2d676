"""Locations, spaces, reservations, booking rules, the staff portal and the REST API."""
