"""One pull of a binding, start to end (``pull_binding``): take its claim (``claim``), read
the changes (``fetch``), plan and apply them with the new cursor (``apply``), save the
binding's status with the claim's release, and record a ``SyncJob``."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case, CharField, F, TextField, Value, When
from django.utils import timezone

from integrations.base import PermanentError, TransientError

from ... import locks, remote
from ...models import BindingStatus, JobKind, JobStatus, SyncJob
from .. import trouble
from .apply import apply_plan
from .claim import acquire, release, renew
from .fetch import load_binding, read_events, sync_window
from .result import PullResult, PullStatus


def pull_binding(binding_id: int, *, full: bool = False) -> PullResult:
    """Pull one binding's remote changes into its reservations (see the package's docstring).
    ``full``: ignore the stored cursor and read the whole window (an administrator's resync).
    Raises TransientError after recording it, so the task may retry."""
    binding = load_binding(binding_id)
    if binding is None or not binding.enabled or not binding.provider.is_active:
        return PullResult(PullStatus.SKIPPED, detail="the binding does not sync")
    if binding.status == BindingStatus.PAUSED:
        return PullResult(PullStatus.SKIPPED, detail="sync is paused for this room")
    claim = acquire(binding_id)
    if claim is None:
        return PullResult(PullStatus.BUSY, detail="another pull of this binding is running")
    heartbeat = locks.Heartbeat(lambda: renew(binding_id, claim)).start()
    started = timezone.now()
    result = PullResult(PullStatus.FAILED)
    fields: dict = {}
    try:
        window = sync_window(started)
        calendar = remote.room_calendar(binding)
        events, cursor, pages, whole = read_events(binding, calendar, window, full=full)
        result = apply_plan(binding, events, cursor, full=whole, window=window)
        result.pages = pages
        fields = _pulled(result, started)
    except PermanentError as exc:
        trouble.pause_binding(binding_id, exc.message)
        result = PullResult(PullStatus.PAUSED, detail=exc.message)
    except TransientError as exc:
        result = PullResult(PullStatus.FAILED, detail=exc.message)
        fields = {"last_error": exc.message[:2000], "status": BindingStatus.ERROR}
        raise
    except Exception:
        result = PullResult(PullStatus.FAILED, detail="Unexpected error (see the worker log).")
        raise
    finally:
        heartbeat.stop()
        release(binding_id, claim, **fields)
        _record_job(binding_id, result, started)
    return result


def _pulled(result: PullResult, started: datetime) -> dict:
    """What a pull that went through saves on its binding (with the claim's release): the
    new cursor, when it pulled (when it started: the cursor holds every change made since
    then, which the next pull's look for unreported events of ours relies on), and its
    status: back to OK after transient errors, but a binding a push paused meanwhile stays
    paused with its reason (one UPDATE either way: CASE on the row's own status)."""
    recovering = When(status=BindingStatus.ERROR, then=Value(BindingStatus.OK))
    return {
        **({"sync_token": result.cursor} if result.cursor else {}),
        "last_pulled_at": started,
        "last_synced_at": timezone.now(),
        "last_error": Case(
            When(status=BindingStatus.PAUSED, then=F("last_error")),
            default=Value(""),
            output_field=TextField(),
        ),
        "status": Case(recovering, default=F("status"), output_field=CharField()),
    }


def _record_job(binding_id: int, result: PullResult, started: datetime) -> None:
    status = {
        PullStatus.SUCCEEDED: JobStatus.SUCCEEDED,
        PullStatus.PAUSED: JobStatus.PAUSED,
    }.get(result.status, JobStatus.FAILED)
    errors = [{"error": result.detail[:500]}] if result.status != PullStatus.SUCCEEDED else []
    if result.conflicts:
        errors.append({"conflicts": result.conflicts})
    if result.restored:
        errors.append({"restored": result.restored})
    SyncJob.objects.create(
        kind=JobKind.PULL,
        binding_id=binding_id,
        status=status,
        total=result.events,
        done=result.events,
        created_count=result.created,
        updated_count=result.updated,
        deleted_count=result.cancelled,
        failed_count=0 if result.status == PullStatus.SUCCEEDED else 1,
        errors=errors,
        started_at=started,
        heartbeat_at=timezone.now(),
        finished_at=timezone.now(),
    )
