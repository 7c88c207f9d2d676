"""Occupancy insights: a daily rollup per space (``rollup``) and the figures the Insights page
and its CSV downloads show (``report``), read from the rollup only, never from reservations."""
