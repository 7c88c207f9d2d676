"""Calendar setup and connection pages: the OAuth connect/callback views and the admin's
provider test and space binding pages.

Two OAuth purposes share one callback per provider kind (``/calendars/oauth/<kind>/callback/``,
the redirect URI registered with Microsoft Entra / Google Cloud, built from
``PUBLIC_BASE_URL``):

- ``personal``: a person connects their own calendar (personal mode). The grant is stored
  encrypted as their ``UserToken``; the push engine is told to resume their paused work.
- ``space``: an administrator authorizes a space's sync (LibCal's "Authorize with Microsoft
  Account"). The sign-in proves the administrator can reach the provider and lists the
  calendars of the authorizing account; it is not stored (sync itself runs with the
  provider's application credentials). Then the administrator picks the sync resource and
  calendar and saves the binding.

The pending flow (state, PKCE verifier, msal's flow dict) lives in the session and is taken
out by the first callback whose ``state`` matches it, so a replayed callback finds nothing to
complete; a callback whose ``state`` does not match (forged, or meant for another flow) is
refused and leaves the pending flow as it was, so the provider's real answer still works.
Every failure (forged state, refused consent, reused code, an unreachable provider) is a
message in plain words on the page the flow started from; no provider answer, token or
secret is shown.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations.base import (
    CalendarClient,
    CalendarInfo,
    CalendarRef,
    ProviderError,
    TokenGrant,
    UserCredentials,
)
from integrations.http import HttpClient
from integrations.registry import client_class, sign_in_kinds, spec
from reservations.models import Space, SpaceKind

from . import bindings, tokens
from .forms import BindingForm, ConnectionTestForm, SpaceChoiceForm
from .models import BindingStatus, CalendarProvider, ProviderKind, SpaceCalendar, UserToken
from .remote import client_for, provider_config
from .sync import export

log = logging.getLogger(__name__)

FLOW_KEY = "calendars_oauth"
SPACE_AUTH_KEY = "calendars_space_auth"
FLOW_MAX_AGE = timedelta(minutes=15)  # an abandoned sign-in cannot be completed later
SPACE_AUTH_MAX_AGE = timedelta(hours=1)


# -- helpers ---------------------------------------------------------------------------------


def redirect_uri(kind: str) -> str:
    """The callback address registered with the provider (from the public base URL)."""
    return settings.PUBLIC_BASE_URL + reverse("calendars:oauth_callback", args=[kind])


def _scopes(kind: str) -> tuple[str, ...]:
    return spec(kind).scopes


def _needs_perm(*perms: str):
    """Staff only, and the model permissions the page uses; others get a plain 403."""

    def decorate(view):
        @staff_member_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perms(perms):
                return HttpResponseForbidden("You do not have permission to change this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _admin_context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


def _resume(name: str, *args: int) -> None:
    """Tell the push engine that credentials are back, so paused work resumes in order.

    ``calendars.tasks.resume_user`` / ``resume_binding`` are enqueued after the commit: the
    reconnection is saved first, and the re-pushes run in a worker, not in this request.
    """
    from . import tasks

    task = getattr(tasks, name, None)
    if task is None:  # an engine without the hook: the next sync run picks the work up
        log.info("calendars: no %s task; paused work resumes on the next sync run", name)
        return
    transaction.on_commit(lambda: task.delay(*args))


def _begin(
    request: HttpRequest,
    provider: CalendarProvider,
    purpose: str,
    *,
    space_id: int | None = None,
    login_hint: str = "",
) -> str:
    """Keep a new flow in the session; the provider's authorization URL."""
    config = provider_config(provider)
    uri = redirect_uri(provider.kind)
    pending: dict[str, Any] = {
        "kind": provider.kind,
        "purpose": purpose,
        "provider_id": provider.pk,
        "space_id": space_id,
        "user_id": request.user.pk,
        "redirect_uri": uri,
        "started": timezone.now().isoformat(),
    }
    if provider.kind == ProviderKind.GOOGLE:
        from integrations.google import oauth as google_oauth

        state = secrets.token_urlsafe(32)
        url, verifier = google_oauth.begin_authorization(
            config, uri, _scopes(provider.kind), state, login_hint=login_hint or None
        )
        pending.update(state=state, verifier=verifier)
    else:
        from integrations.microsoft import oauth as microsoft_oauth

        flow = microsoft_oauth.begin_authorization(
            config, uri, _scopes(provider.kind), login_hint=login_hint or None
        )
        pending.update(state=flow["state"], flow=flow)
        url = flow["auth_uri"]
    request.session[FLOW_KEY] = pending
    return url


def _complete(
    provider: CalendarProvider, pending: dict[str, Any], params: dict[str, str]
) -> TokenGrant:
    """Redeem the callback's code (raises ProviderError with a plain-words message)."""
    config = provider_config(provider)
    if provider.kind == ProviderKind.GOOGLE:
        from integrations.google import oauth as google_oauth

        if params.get("error"):
            denied = params["error"] == "access_denied"
            raise ProviderError(
                "The Google sign-in was cancelled or access was not granted. Try again."
                if denied
                else "Google refused the sign-in. Try again, or ask an administrator.",
                code=str(params["error"])[:50],
            )
        if not params.get("code"):
            raise ProviderError("The Google sign-in answer had no code. Start again.")
        return google_oauth.complete_authorization(
            config, pending["redirect_uri"], params["code"], pending["verifier"]
        )
    from integrations.microsoft import oauth as microsoft_oauth

    return microsoft_oauth.complete_authorization(config, pending["flow"], params)


def _test_client(provider: CalendarProvider) -> CalendarClient:
    """A client with nothing cached: a test must ask the provider now, not replay a token
    obtained before an administrator changed the app registration."""
    config = provider_config(provider)
    http = HttpClient(ca_bundle=config.ca_bundle, timeout=config.timeout)
    client = client_class(provider.kind)
    if provider.kind == ProviderKind.MICROSOFT:  # msal's token cache: an empty one, not ours
        return client(config, http, token_cache_store={})
    return client(config, http)


def run_connection_test(provider: CalendarProvider, target: str) -> tuple[bool, str]:
    """(succeeded, what to tell the administrator) for a test against ``target``."""
    try:
        calendar_id = spec(provider.kind).default_calendar_id(target)
        _test_client(provider).test_connection(CalendarRef(target, calendar_id))
    except ProviderError as exc:
        return False, f"{provider.name}: the test against {target} failed. {exc.message}"
    except Exception:  # a bug or an unforeseen answer must still be a message, never a 500
        log.exception("calendars: connection test of provider %s crashed", provider.pk)
        return False, (
            f"{provider.name}: the test against {target} failed with an unexpected error; "
            "the server log has the details."
        )
    if provider.kind == ProviderKind.GOOGLE:
        acting = provider.delegated_user_email or "the service account"
        return True, f"{provider.name}: connected. {acting} can write to {target}."
    return True, f"{provider.name}: connected. The app can read the calendars of {target}."


def default_test_target(provider: CalendarProvider) -> str:
    """The delegated user, else the first bound room, else nothing."""
    if provider.delegated_user_email:
        return provider.delegated_user_email
    binding = provider.spaces.order_by("pk").first()
    return binding.resource_email if binding else ""


def _calendar_rows(items: list[CalendarInfo]) -> list[list[str]]:
    """JSON-able rows for the session: id, label, and "default" when it is the main one."""
    rows = []
    for item in items:
        label = item.name or item.id
        if item.owner_email and item.owner_email.lower() not in label.lower():
            label = f"{label} ({item.owner_email})"
        if not item.can_edit:
            label += " - read only"
        rows.append([item.id, label, "default" if item.is_default else ""])
    return rows


def _list_calendars(
    provider: CalendarProvider, resource: str, as_user: UserCredentials | None = None
) -> list[list[str]]:
    """The calendars Reserva can pick for ``resource`` (raises ProviderError). Google lists
    the acting user's: the resource calendars shared with the delegated user, or a person's
    own calendar list."""
    items = client_for(provider).list_calendars(CalendarRef(resource), as_user=as_user)
    return _calendar_rows(items)


def _too_old(stamp: str | None, max_age: timedelta) -> bool:
    moment = parse_datetime(stamp or "")
    return moment is None or timezone.now() - moment > max_age


# -- the OAuth callback ----------------------------------------------------------------------


@require_GET
def oauth_callback(request: HttpRequest, kind: str) -> HttpResponse:
    """Where the provider sends the browser back, for both purposes."""
    if not request.user.is_authenticated:
        messages.error(request, "Sign in to Reserva first, then connect the calendar again.")
        return redirect(settings.LOGIN_URL)
    # Read, not taken: an answer that is not this flow's (forged, or another tab's) must leave
    # the pending connection intact, so the provider's real answer still completes it.
    pending = request.session.get(FLOW_KEY)
    purpose = pending.get("purpose") if isinstance(pending, dict) else None
    back = _start_page(pending)
    params = {key: request.GET.get(key, "") for key in request.GET}
    if not isinstance(pending, dict) or pending.get("kind") != kind:
        messages.error(
            request,
            "This sign-in answer does not belong to a connection started in this browser, or "
            "it was already used. Start the connection again.",
        )
        return redirect(back)
    expected = str(pending.get("state") or "")
    if not expected or not secrets.compare_digest(str(params.get("state", "")), expected):
        messages.error(
            request,
            "The sign-in answer did not match this browser session (state mismatch). Start the "
            "connection again from this browser.",
        )
        return redirect(back)
    # The answer is this flow's: taken out now, whatever follows, so it completes at most once.
    request.session.pop(FLOW_KEY, None)
    if pending.get("user_id") != request.user.pk or _too_old(pending.get("started"), FLOW_MAX_AGE):
        messages.error(request, "This sign-in was started too long ago. Start it again.")
        return redirect(back)
    provider = CalendarProvider.objects.filter(pk=pending.get("provider_id"), kind=kind).first()
    if provider is None:
        messages.error(request, "That calendar provider no longer exists.")
        return redirect(back)
    try:
        grant = _complete(provider, pending, params)
    except ProviderError as exc:
        messages.error(request, f"{provider.name}: {exc.message}")
        return redirect(back)
    if purpose == "space":
        return _space_authorized(request, provider, pending, grant)
    return _personal_connected(request, provider, grant)


def _start_page(pending: Any) -> str:
    if isinstance(pending, dict) and pending.get("purpose") == "space" and pending.get("space_id"):
        return reverse("calendars:space_sync", args=[pending["space_id"]])
    return reverse("calendars:connect")


def _personal_connected(
    request: HttpRequest, provider: CalendarProvider, grant: TokenGrant
) -> HttpResponse:
    tokens.store_grant(request.user, provider, grant)
    _resume("resume_user", request.user.pk, provider.pk)
    messages.success(
        request,
        f"Your {provider.get_kind_display()} calendar ({grant.account_email}) is connected.",
    )
    return redirect("calendars:connect")


def _space_authorized(
    request: HttpRequest, provider: CalendarProvider, pending: dict[str, Any], grant: TokenGrant
) -> HttpResponse:
    space_id = int(pending["space_id"])
    account = grant.account_email
    calendars: dict[str, list[list[str]]] = {}
    try:
        # The authorizing account's own calendar list: what LibCal offers when the room's
        # calendar was shared with the administrator.
        creds = UserCredentials(account_email=account, token=grant.token)
        calendars[account.lower()] = _list_calendars(provider, account, as_user=creds)
    except ProviderError as exc:
        messages.warning(request, f"The calendars of {account} could not be listed: {exc.message}")
    # Ids and names only: the grant itself is not kept (it would sit in the session table).
    auths = request.session.get(SPACE_AUTH_KEY) or {}
    auths[str(space_id)] = {
        "provider_id": provider.pk,
        "account_email": account,
        "at": timezone.now().isoformat(),
        "calendars": calendars,
    }
    request.session[SPACE_AUTH_KEY] = auths
    messages.success(
        request,
        f"Authorized with {provider.get_kind_display()} as {account}. Choose the sync resource "
        "and calendar, then save.",
    )
    return redirect("calendars:space_calendar", space_id)


# -- staff: connect my calendar --------------------------------------------------------------


@login_required
@require_GET
def connect(request: HttpRequest) -> HttpResponse:
    """The person's connections, one row per active provider."""
    providers = list(
        CalendarProvider.objects.filter(is_active=True, kind__in=sign_in_kinds()).order_by("name")
    )
    held = {t.provider_id: t for t in UserToken.objects.filter(user=request.user)}
    rows = []
    for provider in providers:
        token = held.get(provider.pk)
        rows.append(
            {
                "provider": provider,
                "token": token,
                "days_idle": tokens.days_idle(token) if token else None,
                "needs_attention": bool(token and token.status in tokens.NEEDS_ATTENTION),
            }
        )
    return render(
        request,
        "calendars/connect.html",
        {"rows": rows, "microsoft_consent_url": tokens.MICROSOFT_CONSENT_URL},
    )


@login_required
@require_POST
def connect_start(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = CalendarProvider.objects.filter(
        pk=provider_id, is_active=True, kind__in=sign_in_kinds()
    ).first()
    if provider is None:
        messages.error(request, "That calendar provider is not available.")
        return redirect("calendars:connect")
    try:
        url = _begin(request, provider, "personal", login_hint=request.user.email)
    except ProviderError as exc:
        messages.error(request, f"{provider.name} cannot be reached: {exc.message}")
        return redirect("calendars:connect")
    return redirect(url)


@login_required
@require_POST
def disconnect(request: HttpRequest, provider_id: int) -> HttpResponse:
    token = (
        UserToken.objects.select_related("provider")
        .filter(user=request.user, provider_id=provider_id)
        .first()
    )
    if token is None:
        messages.info(request, "That calendar was not connected.")
    else:
        messages.success(request, tokens.disconnect(token))
    return redirect("calendars:connect")


# -- admin: test a provider's connection -----------------------------------------------------


# A connection test sends the provider's credential, so it takes the right to edit that
# credential as well as the provider (the page and the admin action alike).
CONNECTION_TEST_PERMS = ("calendars.change_calendarprovider", "calendars.change_credentialalias")


def may_test_connection(user: Any) -> bool:
    return user.has_perms(CONNECTION_TEST_PERMS)


@_needs_perm(*CONNECTION_TEST_PERMS)
def provider_test(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = get_object_or_404(
        CalendarProvider.objects.select_related("connection", "credential"), pk=provider_id
    )
    result: tuple[bool, str] | None = None
    if request.method == "POST":
        form = ConnectionTestForm(provider, request.POST)
        if form.is_valid():
            result = run_connection_test(provider, form.cleaned_data["target"])
            (messages.success if result[0] else messages.error)(request, result[1])
    else:
        form = ConnectionTestForm(provider, initial={"target": default_test_target(provider)})
    suggestions = [provider.delegated_user_email] if provider.delegated_user_email else []
    suggestions += list(
        provider.spaces.order_by("resource_email").values_list("resource_email", flat=True)
    )
    return render(
        request,
        "calendars/admin/provider_test.html",
        _admin_context(
            request,
            f"Test connection: {provider.name}",
            provider=provider,
            form=form,
            result=result,
            suggestions=list(dict.fromkeys(suggestions)),
            opts=CalendarProvider._meta,
        ),
    )


# -- admin: a space's calendar sync ----------------------------------------------------------

BINDING_PERM = "calendars.change_spacecalendar"


@_needs_perm(BINDING_PERM)
def space_pick(request: HttpRequest) -> HttpResponse:
    """Choose the space to set up (the Space admin and the binding list link here)."""
    form = SpaceChoiceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return redirect("calendars:space_sync", form.cleaned_data["space"].pk)
    return render(
        request,
        "calendars/admin/space_pick.html",
        _admin_context(
            request, "Calendar sync: choose a space", form=form, opts=SpaceCalendar._meta
        ),
    )


@_needs_perm(BINDING_PERM)
@require_GET
def space_sync(request: HttpRequest, space_id: int) -> HttpResponse:
    """A space's sync: its binding, and Authorize / Remove authorization."""
    space = get_object_or_404(Space.objects.select_related("location"), pk=space_id)
    binding = SpaceCalendar.objects.select_related("provider").filter(space=space).first()
    # Authorize signs in with the provider; an Exchange Server room is bound in the admin's
    # Space calendars list with the sync user's credentials instead.
    providers = list(
        CalendarProvider.objects.filter(is_active=True, kind__in=sign_in_kinds()).order_by("name")
    )
    return render(
        request,
        "calendars/admin/space_sync.html",
        _admin_context(
            request,
            f"Calendar sync: {space.name}",
            space=space,
            binding=binding,
            pulled_count=bindings.pulled(binding).count() if binding else 0,
            pulled_choices=bindings.CHOICES,
            providers=providers,
            is_container=space.kind == SpaceKind.CONTAINER,
            opts=SpaceCalendar._meta,
        ),
    )


@_needs_perm(BINDING_PERM)
@require_POST
def space_authorize(request: HttpRequest, space_id: int, provider_id: int) -> HttpResponse:
    space = get_object_or_404(Space, pk=space_id)
    back = redirect("calendars:space_sync", space.pk)
    if space.kind == SpaceKind.CONTAINER:
        messages.error(
            request,
            f"{space.name} is a container space with seats; a container cannot sync with a "
            "calendar. Bind its seats instead.",
        )
        return back
    provider = CalendarProvider.objects.filter(pk=provider_id, is_active=True).first()
    if provider is None:
        messages.error(request, "That calendar provider is not available (inactive or deleted).")
        return back
    if provider.kind not in sign_in_kinds():
        messages.error(
            request,
            f"Nobody signs in to {provider.name}: bind {space.name} in Space calendars with the "
            "sync user's credentials instead.",
        )
        return back
    try:
        url = _begin(request, provider, "space", space_id=space.pk, login_hint=request.user.email)
    except ProviderError as exc:
        messages.error(request, f"{provider.name} cannot be reached: {exc.message}")
        return back
    return redirect(url)


@_needs_perm(BINDING_PERM)
def space_calendar(request: HttpRequest, space_id: int) -> HttpResponse:
    """After authorizing: choose the sync resource, load its calendars, pick one, save."""
    space = get_object_or_404(Space.objects.select_related("location"), pk=space_id)
    auths = request.session.get(SPACE_AUTH_KEY) or {}
    pending = auths.get(str(space.pk))
    if not pending or _too_old(pending.get("at"), SPACE_AUTH_MAX_AGE):
        messages.error(request, "Authorize with the provider first (or again: it was a while ago).")
        return redirect("calendars:space_sync", space.pk)
    provider = CalendarProvider.objects.filter(pk=pending["provider_id"]).first()
    if provider is None:
        messages.error(request, "That calendar provider no longer exists.")
        return redirect("calendars:space_sync", space.pk)
    existing = SpaceCalendar.objects.filter(space=space, provider=provider).first()
    pulled_from = _pulled_from(space)

    if request.method == "POST":
        resource = request.POST.get("resource_email", "").strip()
    else:
        resource = existing.resource_email if existing else pending["account_email"]
    calendars, list_error = _listed_calendars(provider, resource, pending)
    request.session[SPACE_AUTH_KEY] = auths  # keep the listings for the next step

    if request.method == "POST":
        form = BindingForm(request.POST, calendars=calendars, pulled_from=pulled_from)
        if "save" not in request.POST:
            form = _binding_form(resource, calendars, pulled_from)
        elif _save_from_form(request, space, provider, form, pending):
            auths.pop(str(space.pk), None)
            request.session[SPACE_AUTH_KEY] = auths
            return redirect("calendars:space_sync", space.pk)
    else:
        chosen = existing.calendar_id if existing else ""
        form = _binding_form(resource, calendars, pulled_from, chosen=chosen)
    return _render_space_calendar(
        request, space, provider, pending, form, resource=resource, list_error=list_error
    )


def _render_space_calendar(
    request: HttpRequest,
    space: Space,
    provider: CalendarProvider,
    pending: dict[str, Any],
    form: BindingForm,
    *,
    resource: str,
    list_error: str,
) -> HttpResponse:
    return render(
        request,
        "calendars/admin/space_calendar.html",
        _admin_context(
            request,
            f"Calendar sync: {space.name}",
            space=space,
            provider=provider,
            account_email=pending["account_email"],
            form=form,
            list_error=(
                f"The calendars of {resource} could not be listed: {list_error}"
                if list_error
                else ""
            ),
            opts=SpaceCalendar._meta,
        ),
    )


def _pulled_from(space: Space) -> tuple[str, int] | None:
    """The mailbox the space's current binding pulled bookings from, and how many, if any:
    the form asks what becomes of them when another calendar is saved."""
    current = SpaceCalendar.objects.filter(space=space).first()
    pulled_count = bindings.pulled(current).count() if current else 0
    return (current.resource_email, pulled_count) if pulled_count else None


def _listed_calendars(
    provider: CalendarProvider, resource: str, pending: dict[str, Any]
) -> tuple[list[list[str]], str]:
    """The calendars of ``resource`` and why they could not be listed ("" when they could).
    Listed once per resource and kept in the pending authorization (in the session)."""
    cache: dict[str, list[list[str]]] = pending.setdefault("calendars", {})
    list_error = ""
    if resource and "@" in resource and resource.lower() not in cache:
        try:
            cache[resource.lower()] = _list_calendars(provider, resource)
        except ProviderError as exc:
            list_error = exc.message
    return cache.get(resource.lower(), []), list_error


def _binding_form(
    resource: str,
    calendars: list[list[str]],
    pulled_from: tuple[str, int] | None,
    *,
    chosen: str = "",
) -> BindingForm:
    """An unbound form for ``resource``, on ``chosen`` or else its default calendar."""
    return BindingForm(
        initial={
            "resource_email": resource,
            "calendar": chosen or _default_choice(calendars, resource),
        },
        calendars=calendars,
        pulled_from=pulled_from,
    )


def _save_from_form(
    request: HttpRequest,
    space: Space,
    provider: CalendarProvider,
    form: BindingForm,
    pending: dict[str, Any],
) -> bool:
    """Save the binding the form describes; False leaves the errors on the form."""
    if not form.is_valid():
        return False
    calendar_id = form.cleaned_data["calendar"]
    if not calendar_id:
        form.add_error("calendar", "Pick the calendar to sync with.")
        return False
    return _save_binding(request, space, provider, form, calendar_id, pending) is not None


def _default_choice(calendars: list[list[str]], resource: str) -> str:
    """The resource's own calendar (Google: id = its email), else the mailbox's default."""
    for row in calendars:
        if row[0].lower() == resource.lower():
            return row[0]
    return next((row[0] for row in calendars if row[2] == "default"), "")


def _save_binding(
    request: HttpRequest,
    space: Space,
    provider: CalendarProvider,
    form: BindingForm,
    calendar_id: str,
    pending: dict[str, Any],
) -> SpaceCalendar | None:
    binding = SpaceCalendar.objects.filter(space=space).first() or SpaceCalendar(space=space)
    old = SpaceCalendar.objects.get(pk=binding.pk) if binding.pk else None
    binding.provider = provider
    binding.resource_email = form.cleaned_data["resource_email"]
    binding.calendar_id = calendar_id
    binding.calendar_name = form.calendar_name(calendar_id)[:200]
    binding.enabled = True
    binding.authorized_by = request.user
    binding.authorized_at = parse_datetime(pending["at"]) or timezone.now()
    binding.status = BindingStatus.OK
    binding.last_error = ""
    try:
        binding.full_clean()
    except ValidationError as exc:
        for message in exc.messages:
            form.add_error(None, message)
        return None
    # The field is there when the space's binding pulled bookings (BindingForm).
    choice = form.cleaned_data.get("pulled_bookings", "")
    leaving = (
        old is not None and "pulled_bookings" in form.fields and bindings.retargeted(old, binding)
    )
    if leaving and not choice:
        form.add_error(
            "pulled_bookings",
            f"These bookings came from {old.resource_email}, which {space.name} will no longer "
            "read: keep them as local bookings, or cancel them.",
        )
        return None
    try:
        with transaction.atomic():  # the pulled bookings and the binding change together
            released = bindings.release_pulled(old, choice, request.user) if leaving else None
            binding.save()
    except IntegrityError:  # another space took the calendar between the check and the save
        form.add_error(None, "This calendar was just bound to another space; pick another.")
        return None
    if released is not None:
        messages.info(
            request,
            f"Bookings pulled from {old.resource_email}: {released[0]} kept as local bookings, "
            f"{released[1]} cancelled (their people were told).",
        )
    _resume("resume_binding", binding.pk)
    # Its webhook and the bulk export of its future bookings follow from the save
    # (calendars/receivers.py).
    waiting = export.exportable(binding).count()
    messages.success(
        request,
        f"{space.name} now syncs with {binding.calendar_name or calendar_id} of "
        f"{binding.resource_email}."
        + (
            f" Its {waiting} future reservation(s) are sent there by a bulk export."
            if waiting
            else ""
        ),
    )
    return binding


@_needs_perm(BINDING_PERM)
@require_http_methods(["GET", "POST"])
@transaction.atomic
def space_remove(request: HttpRequest, space_id: int) -> HttpResponse:
    """Stop syncing the space. Nothing is deleted remotely: events already in the room's
    calendar stay there (LibCal's and DESIGN.md's rule). GET is the confirmation page, which
    also asks what becomes of the bookings pulled from that calendar; its POST removes."""
    space = get_object_or_404(Space.objects.select_related("location"), pk=space_id)
    binding = SpaceCalendar.objects.filter(space=space).first()
    if request.method == "GET":
        if binding is None or not binding.enabled:
            messages.info(request, f"{space.name} was not syncing.")
            return redirect("calendars:space_sync", space.pk)
        return render(
            request,
            "calendars/admin/space_remove.html",
            _admin_context(
                request,
                f"Remove the authorization of {space.name}?",
                space=space,
                binding=binding,
                pulled_count=bindings.pulled(binding).count(),
                pulled_choices=bindings.CHOICES,
                opts=SpaceCalendar._meta,
            ),
        )
    if binding is None or not binding.enabled:
        messages.info(request, f"{space.name} was not syncing.")
    else:
        count = bindings.pulled(binding).count()
        choice = request.POST.get("pulled_bookings", "")
        if count and choice not in bindings.CHOICE_VALUES:
            messages.error(
                request,
                f"{count} booking(s) were pulled from {binding.resource_email}: say whether to "
                "keep them as local bookings or cancel them, then remove the authorization.",
            )
            return redirect("calendars:space_remove", space.pk)
        if count:
            kept, cancelled = bindings.release_pulled(binding, choice, request.user)
            messages.info(
                request,
                f"Bookings pulled from {binding.resource_email}: {kept} kept as local bookings, "
                f"{cancelled} cancelled (their people were told).",
            )
        binding.enabled = False
        binding.authorized_by = None
        binding.authorized_at = None
        binding.save(update_fields=["enabled", "authorized_by", "authorized_at"])
        # Its webhook is removed by calendars/receivers.py (sync switched off).
        messages.success(
            request,
            f"Authorization removed: {space.name} no longer syncs with {binding.resource_email}. "
            "Events already in that calendar were left as they are.",
        )
    return redirect("calendars:space_sync", space.pk)
