"""Stateful HTTPS emulator of Microsoft identity/Graph and Google OAuth/Calendar v3."""
