"""REST API for integrations (``/api/v1/``): serializers, views, urls.

Writes go through ``reservations.services``.
"""
