"""On-premises Exchange Server (2016, 2019, Subscription Edition) over Exchange Web Services.

Built on exchangelib: ``client.py`` (``EwsClient``), ``transport.py`` (the HTTP adapter that
pins each endpoint's CA bundle and timeout and logs request ids), ``errors.py`` (exchangelib's
exceptions as Reserva's error classes), ``mapping.py`` (our tag as an extended property,
EventData <-> CalendarItem).
"""
