"""Celery tasks of the calendars app: thin wrappers that take ids and call the sync engine."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

# -- bulk export (calendars/sync/export.py) ---------------------------------------------------


@shared_task(ignore_result=True)
def run_export(job_id: int, claim: str = "") -> None:
    """Run or finish one export job; without the job's current claim it does nothing."""
    from .sync import export

    export.run_export_job(job_id, claim)


@shared_task(ignore_result=True)
def resume_stale_exports() -> int:
    """Beat, every minute: hand exports whose worker stopped to a new run.

    The claim is taken with an atomic UPDATE on the stale heartbeat, so two beats (or a beat
    and a slow worker) never both own a job; the old worker stops at its next heartbeat.
    """
    from .sync import export

    claimed = export.claim_stale_exports()
    for job_id, claim in claimed:
        transaction.on_commit(lambda j=job_id, c=claim: run_export.delay(j, c))
    return len(claimed)


# -- personal tokens (calendars/tokens.py) ----------------------------------------------------


@shared_task(ignore_result=True)
def check_user_tokens() -> dict[str, int]:
    """Beat, daily: silently refresh every stored personal token and record its status
    (valid, expiring when idle near the provider's limit, expired or revoked when refused).
    Idempotent; logs token ids and outcomes only, never token material."""
    from . import tokens

    return tokens.check_all()
