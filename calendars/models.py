"""Calendar providers and how Reserva reaches them.

- ``ConnectionAlias``: where a provider lives (identity endpoints, API base URL, an optional
  private CA bundle, timeout). Defaults are the real Microsoft and Google endpoints; the demo
  points one at the local sandbox.
- ``CredentialAlias``: who Reserva is there (tenant, client id and an encrypted client secret,
  or an encrypted Google service-account key; for Exchange Server the sync user, its
  authentication and an encrypted password, and impersonation or delegate access).
- ``CalendarProvider``: a Microsoft 365, Google or Exchange Server (EWS) provider made of the
  two, plus the delegated user for strict mode and blockers.
- ``SyncSettings``: one row, the sync mode and schedule.
- ``SpaceCalendar``: which space syncs with which room mailbox / resource calendar.
- ``UserToken``: a person's own OAuth token for personal mode, encrypted.

Secrets use ``calendars.crypto`` fields; the admin never shows them back.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from integrations.registry import sign_in_kinds
from reservations.models import Space, SpaceKind

from .crypto import EncryptedJSONField, EncryptedTextField
from .endpoints import URL_FIELDS, refusal


class ProviderKind(models.TextChoices):
    MICROSOFT = "microsoft", _("Microsoft 365 (Exchange Online)")
    GOOGLE = "google", _("Google Workspace")
    EWS = "ews", _("Exchange Server (EWS)")


class ExchangeVersion(models.TextChoices):
    DETECT = "", _("Detect from the server")
    EXCHANGE_2016 = "2016", _("Exchange Server 2016")
    EXCHANGE_2019 = "2019", _("Exchange Server 2019")
    SUBSCRIPTION = "se", _("Exchange Server Subscription Edition")


class ExchangeAuth(models.TextChoices):
    NTLM = "ntlm", _("NTLM (domain\\user and password)")
    BASIC = "basic", _("Basic, over HTTPS only")
    OAUTH = "oauth", _("OAuth (hybrid modern auth)")


class ExchangeAccess(models.TextChoices):
    IMPERSONATION = "impersonation", _("Impersonation (ApplicationImpersonation role)")
    DELEGATE = "delegate", _("Delegate / Full Access to each room mailbox")


# Exchange Online's EWS hosts: Reserva reaches Exchange Online through Microsoft Graph.
EXCHANGE_ONLINE_HOSTS = ("outlook.office365.com", "outlook.office.com", "outlook.office365.us")


DEFAULT_ENDPOINTS = {
    ProviderKind.MICROSOFT: {
        "authority_url": "https://login.microsoftonline.com",
        "authorization_url": "https://login.microsoftonline.com",
        "api_base_url": "https://graph.microsoft.com/v1.0",
    },
    ProviderKind.GOOGLE: {
        "authority_url": "https://oauth2.googleapis.com/token",
        "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "api_base_url": "https://www.googleapis.com/calendar/v3",
    },
    # Exchange Server: the EWS URL is the customer's own; the authority serves hybrid modern
    # auth only.
    ProviderKind.EWS: {
        "authority_url": "https://login.microsoftonline.com",
        "authorization_url": "",
        "api_base_url": "",
    },
}


class ConnectionAlias(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    authority_url = models.URLField(
        blank=True,
        help_text=_(
            "Microsoft: the authority host, without the tenant, which is appended "
            "(https://login.microsoftonline.us for US Government, https://login.chinacloudapi.cn "
            "for 21Vianet). Google: the OAuth token URL. Empty = the provider's public endpoint."
        ),
    )
    authorization_url = models.URLField(
        blank=True, help_text=_("Where people sign in to grant access. Empty = the default.")
    )
    api_base_url = models.URLField(
        blank=True,
        help_text=_(
            "Microsoft: the Graph service root with its version (https://graph.microsoft.us/v1.0 "
            "for US Government; the token's scope follows its host). Google: the Calendar API "
            "base (…/calendar/v3). Exchange Server: the EWS URL, "
            "https://mail.example.com/EWS/Exchange.asmx (required). Empty = the public default."
        ),
    )
    batch_url = models.URLField(
        blank=True,
        help_text=_(
            "Google only: the batch endpoint. Empty = derived from the API base URL "
            "(…/calendar/v3 -> …/batch/calendar/v3). Microsoft batches go to the API base's "
            "$batch."
        ),
    )
    ca_bundle = models.CharField(
        max_length=500,
        blank=True,
        help_text=_(
            "Path to a PEM file of certificate authorities to trust for this connection "
            "(a company's private CA, or the sandbox's). Empty = the system's trust store."
        ),
    )
    timeout_seconds = models.PositiveSmallIntegerField(default=30)
    server_version = models.CharField(
        max_length=8,
        blank=True,
        choices=ExchangeVersion.choices,
        default=ExchangeVersion.DETECT,
        help_text=_("Exchange Server only: the server's version, or detect it on first contact."),
    )
    calendar_folder = models.CharField(
        max_length=200,
        blank=True,
        help_text=_(
            "Exchange Server only: a calendar folder's name under each mailbox's calendar. "
            "Empty = the mailbox's calendar itself."
        ),
    )

    class Meta:
        verbose_name_plural = _("connection aliases")
        permissions = [
            (
                "manage_provider_endpoints",
                _("Can set a connection alias's URLs and CA bundle"),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.batch_url and self.kind != ProviderKind.GOOGLE:
            errors["batch_url"] = _("Only Google has a separate batch URL; leave it empty.")
        if self.kind == ProviderKind.EWS:
            errors.update(self._ews_problems())
        else:
            if self.server_version:
                errors["server_version"] = _("Only Exchange Server has a version; leave it empty.")
            if self.calendar_folder:
                errors["calendar_folder"] = _(
                    "Only Exchange Server takes a folder name; bind a calendar instead."
                )
        for name in URL_FIELDS:
            value = getattr(self, name)
            if value and name not in errors and (reason := refusal(value)):
                errors[name] = reason
        if errors:
            raise ValidationError(errors)

    def _ews_problems(self) -> dict[str, str]:
        url = self.api_base_url
        if not url:
            return {"api_base_url": _("Enter the EWS URL, https://<server>/EWS/Exchange.asmx.")}
        parts = urlsplit(url)
        if (parts.hostname or "").lower().rstrip(".") in EXCHANGE_ONLINE_HOSTS:
            return {
                "api_base_url": _(
                    "This is Exchange Online, where EWS is blocked (from 1 October 2026; off for "
                    "good on 1 April 2027). Set up a Microsoft 365 (Exchange Online) provider "
                    "for these mailboxes instead."
                )
            }
        if not parts.path.lower().rstrip("/").endswith("/ews/exchange.asmx"):
            return {
                "api_base_url": _(
                    "An EWS URL ends in /EWS/Exchange.asmx (https://mail.example.com/EWS/"
                    "Exchange.asmx)."
                )
            }
        return {}

    def endpoint(self, name: str) -> str:
        """The configured endpoint, or the provider's public default."""
        return (getattr(self, name) or DEFAULT_ENDPOINTS[self.kind][name]).rstrip("/")


class CredentialAlias(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    tenant_id = models.CharField(
        max_length=100, blank=True, help_text=_("Microsoft Entra tenant id or domain.")
    )
    client_id = models.CharField(
        max_length=200, blank=True, help_text=_("Application (client) id / OAuth client id.")
    )
    client_secret = EncryptedTextField(blank=True)
    service_account_key = EncryptedJSONField(
        blank=True, null=True, help_text=_("Google service-account key (JSON).")
    )
    scopes = models.TextField(
        blank=True, help_text=_("Extra scopes, space-separated. Empty = what Reserva needs.")
    )
    # Exchange Server (EWS) only.
    auth_method = models.CharField(
        max_length=8,
        blank=True,
        choices=ExchangeAuth.choices,
        help_text=_("Exchange Server only: how the sync user signs in."),
    )
    username = models.CharField(
        max_length=200,
        blank=True,
        help_text=_(
            "Exchange Server, NTLM or Basic: the sync user's sign-in name, DOMAIN\\user or "
            "user@domain."
        ),
    )
    password = EncryptedTextField(blank=True)
    resource_url = models.URLField(
        blank=True,
        help_text=_(
            "Exchange Server, OAuth: the on-premises server's resource as registered in Entra "
            "(https://mail.example.com); the tenant, client id and secret above are used too."
        ),
    )
    account_email = models.EmailField(
        blank=True, help_text=_("Exchange Server only: the sync user's email address.")
    )
    access_type = models.CharField(
        max_length=16,
        blank=True,
        choices=ExchangeAccess.choices,
        help_text=_(
            "Exchange Server only: impersonation needs the ApplicationImpersonation role "
            "(New-ManagementRoleAssignment); delegate needs Full Access to each room mailbox."
        ),
    )

    class Meta:
        verbose_name_plural = _("credential aliases")

    def __str__(self) -> str:
        return self.name

    @property
    def uses_authority(self) -> bool:
        """Tokens come from the connection's authority: not for Exchange Server's NTLM or
        Basic sign-in, which never contacts it (so an allowlist need not name it)."""
        return self.kind != ProviderKind.EWS or self.auth_method == ExchangeAuth.OAUTH

    def clean(self) -> None:
        if self.kind == ProviderKind.MICROSOFT and not (self.tenant_id and self.client_id):
            raise ValidationError(_("Microsoft credentials need a tenant id and a client id."))
        if self.kind == ProviderKind.EWS and (errors := self._ews_problems()):
            raise ValidationError(errors)
        key = self.service_account_key
        if key is not None and not (
            isinstance(key, dict)
            and key.get("type") == "service_account"
            and key.get("private_key")
            and key.get("client_email")
        ):
            raise ValidationError(
                {"service_account_key": _("This is not a Google service-account key file.")}
            )

    def _ews_problems(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.auth_method:
            errors["auth_method"] = _("Choose how the sync user signs in.")
        elif self.auth_method in (ExchangeAuth.NTLM, ExchangeAuth.BASIC):
            name = self.username.strip()
            if not name:
                errors["username"] = _("Enter the sync user's sign-in name.")
            elif self.auth_method == ExchangeAuth.NTLM and not (
                "@" in name or ("\\" in name and all(name.split("\\", 1)))
            ):
                errors["username"] = _("For NTLM write DOMAIN\\user or user@domain.")
            if not self.password:
                errors["password"] = _("Enter the sync user's password.")
        else:
            missing = [
                label
                for label, value in (
                    ("tenant id", self.tenant_id),
                    ("client id", self.client_id),
                    ("client secret", self.client_secret),
                    ("resource URL", self.resource_url),
                )
                if not value
            ]
            if missing:
                errors["auth_method"] = _("OAuth needs the %(fields)s.") % {
                    "fields": ", ".join(missing)
                }
            elif not self.resource_url.lower().startswith("https://"):
                errors["resource_url"] = _("The resource URL is an https:// address.")
        if not self.account_email:
            errors["account_email"] = _("Enter the sync user's email address.")
        if not self.access_type:
            errors["access_type"] = _("Choose impersonation or delegate access.")
        elif (
            self.access_type == ExchangeAccess.DELEGATE
            and self.pk is not None
            and SyncSettings.load().mode == SyncMode.PERSONAL
            and self.calendarprovider_set.filter(is_active=True).exists()
        ):
            errors["access_type"] = personal_needs_impersonation()
        return errors


class CalendarProvider(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    is_active = models.BooleanField(default=True)
    connection = models.ForeignKey(ConnectionAlias, on_delete=models.PROTECT)
    credential = models.ForeignKey(CredentialAlias, on_delete=models.PROTECT)
    delegated_user_email = models.EmailField(
        blank=True,
        help_text=_(
            "The mailbox whose calendar holds strict-mode and blocker reservations; for "
            "Google also the user the service account impersonates."
        ),
    )
    sign_in_enabled = models.BooleanField(
        default=False,
        help_text=_(
            'Offer "Sign in with Microsoft / Google" on the portal\'s sign-in page, using this '
            "provider's credential alias (client id and secret) and connection alias. At most one "
            "provider of each kind; MICROSOFT_SIGNIN_* / GOOGLE_SIGNIN_* settings take precedence."
        ),
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            # The sign-in redirect URI names the kind (/accounts/oidc/microsoft/...), so one
            # provider per kind can back it.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(sign_in_enabled=True),
                name="one_sign_in_provider_per_kind",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.connection_id and self.connection.kind != self.kind:
            errors["connection"] = _("This connection alias is for another provider kind.")
        if self.credential_id and self.credential.kind != self.kind:
            errors["credential"] = _("This credential alias is for another provider kind.")
        if self.sign_in_enabled and self.kind and self.kind not in sign_in_kinds():
            errors["sign_in_enabled"] = _(
                "Nobody signs in to %(kind)s: its rooms sync with the sync user's credentials."
            ) % {"kind": self.get_kind_display()}
        if (
            not errors
            and self.kind == ProviderKind.EWS
            and self.connection_id
            and self.credential_id
            and self.credential.auth_method in (ExchangeAuth.BASIC, ExchangeAuth.OAUTH)
            and urlsplit(self.connection.api_base_url).scheme.lower() != "https"
        ):
            errors["credential"] = _(
                "Basic authentication and OAuth tokens would cross the network readable over "
                "plain http: use the server's https:// EWS URL, or NTLM."
            )
        if (
            not errors
            and self.kind == ProviderKind.EWS
            and self.is_active
            and self.credential_id
            and self.credential.access_type == ExchangeAccess.DELEGATE
            and SyncSettings.load().mode == SyncMode.PERSONAL
        ):
            errors["credential"] = personal_needs_impersonation()
        if errors:
            raise ValidationError(errors)


def personal_needs_impersonation(providers: str = "") -> str:
    """Why delegate access and personal mode do not go together (Exchange Server)."""
    which = _(" (%(providers)s)") % {"providers": providers} if providers else ""
    return _(
        "Personal mode writes each booking in its organizer's own Exchange mailbox, which the "
        "sync user can do only with impersonation (the ApplicationImpersonation role); "
        "delegate access reaches only the room mailboxes it was given%(which)s. Switch the "
        "credential alias to impersonation, or use normal or strict mode."
    ) % {"which": which}


class SyncMode(models.TextChoices):
    NORMAL = "normal", _("Normal: application credentials, events in the room's calendar")
    STRICT = "strict", _("Strict: changes only to reservations in the delegated mailbox")
    PERSONAL = "personal", _("Personal: users act with their own token")


class SyncSettings(models.Model):
    """The one row of sync settings (``SyncSettings.load()``)."""

    mode = models.CharField(max_length=16, choices=SyncMode.choices, default=SyncMode.NORMAL)
    blocker_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Invited to every blocker reservation."),
    )
    sync_past_days = models.PositiveSmallIntegerField(default=7)
    sync_future_days = models.PositiveSmallIntegerField(default=180)
    pull_interval_minutes = models.PositiveSmallIntegerField(default=5)

    class Meta:
        verbose_name = verbose_name_plural = _("sync settings")

    def __str__(self) -> str:
        return "Sync settings"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> SyncSettings:
        return cls.objects.get_or_create(pk=1)[0]

    def clean(self) -> None:
        if self.mode != SyncMode.PERSONAL:
            return
        delegates = CalendarProvider.objects.filter(
            kind=ProviderKind.EWS, is_active=True, credential__access_type=ExchangeAccess.DELEGATE
        ).order_by("name")
        names = ", ".join(provider.name for provider in delegates)
        if names:
            raise ValidationError({"mode": personal_needs_impersonation(names)})


class BindingStatus(models.TextChoices):
    OK = "ok", _("OK")
    PAUSED = "paused", _("Paused (needs attention)")
    ERROR = "error", _("Error (retrying)")


class SpaceCalendar(models.Model):
    """A space synced with a room mailbox (Microsoft, Exchange Server) or resource calendar
    (Google): the *binding* the sync code speaks of (``binding`` variables, ``binding_id``).
    The model keeps its name: admin URLs, permission codenames and runbooks use it."""

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="calendar")
    provider = models.ForeignKey(CalendarProvider, on_delete=models.PROTECT, related_name="spaces")
    resource_email = models.EmailField(
        help_text=_("The room mailbox or resource calendar's address (the sync resource).")
    )
    calendar_id = models.CharField(max_length=500, blank=True)
    calendar_name = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    authorized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    authorized_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=BindingStatus.choices, default=BindingStatus.OK)
    last_error = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # Pull (calendars/sync/pull/). The delta link / sync token is a credential-like cursor:
    # never shown in the admin (editable=False) nor logged.
    sync_token = models.TextField(blank=True, editable=False)
    last_pulled_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_pull_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)
    # Set while a pull is queued (request_pull coalesces on it); cleared when the pull starts.
    pull_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("space calendar")
        constraints = [
            # A room calendar bound to two spaces imports each room's events into the other as
            # phantom bookings: at most one enabled binding per calendar. A disabled binding
            # keeps its row (and its history) and may name any calendar.
            models.UniqueConstraint(
                "provider",
                Lower("resource_email"),
                "calendar_id",
                condition=models.Q(enabled=True),
                name="one_space_per_room_calendar",
                violation_error_message=_("This room calendar is already bound to another space."),
            ),
            # The same calendar reached through another address (a Google resource calendar
            # shared with the authorizing account; Graph calendar ids are unique too).
            models.UniqueConstraint(
                "provider",
                "calendar_id",
                condition=models.Q(enabled=True) & ~models.Q(calendar_id=""),
                name="one_space_per_calendar_id",
                violation_error_message=_("This calendar is already bound to another space."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.space.name} <-> {self.resource_email}"

    def clean(self) -> None:
        if self.space_id and self.space.kind == SpaceKind.CONTAINER:
            raise ValidationError(
                {"space": _("A container space cannot sync; bind its seats instead.")}
            )

    def reads_same_calendar(self, other: SpaceCalendar) -> bool:
        """Whether ``other`` (same provider) may read the calendar this binding reads.

        Google: a calendar id names one calendar, and an empty one means the resource's own
        calendar, whose id is its address. Microsoft: a calendar id names one calendar; an
        empty one means "the mailbox's default calendar", whose id is not known offline, so
        it may be any calendar of the same mailbox bound by id (the setup page stores ids,
        the admin form allows leaving it empty): counted as the same, to be safe.
        """
        if self.provider.kind == ProviderKind.GOOGLE:
            mine = (self.calendar_id or self.resource_email).lower()
            return mine == (other.calendar_id or other.resource_email).lower()
        if self.calendar_id and other.calendar_id:
            return self.calendar_id == other.calendar_id
        return self.resource_email.lower() == other.resource_email.lower()

    def bound_elsewhere(self) -> SpaceCalendar | None:
        """Another enabled binding of the same provider that reads the same calendar."""
        if not (self.enabled and self.provider_id and self.resource_email):
            return None
        names = {self.resource_email.lower(), self.calendar_id.lower()} - {""}
        candidates = models.Q()
        for name in names:
            candidates |= models.Q(resource_email__iexact=name) | models.Q(calendar_id__iexact=name)
        others = (
            SpaceCalendar.objects.filter(candidates, provider_id=self.provider_id, enabled=True)
            .exclude(pk=self.pk)
            .select_related("space__location", "provider")
        )
        return next((other for other in others if self.reads_same_calendar(other)), None)

    def validate_constraints(self, exclude=None) -> None:
        """The database constraints, with the other space named (the generic message of
        ``one_space_per_*`` would not say which space holds the calendar)."""
        other = self.bound_elsewhere()
        try:
            super().validate_constraints(exclude)
        except ValidationError:
            if other is None:
                raise
        if other is not None:
            raise ValidationError(
                {
                    "resource_email": _(
                        "%(calendar)s is already bound to %(space)s (%(location)s). A room "
                        "calendar syncs with one space: remove that binding first, or pick "
                        "another calendar."
                    )
                    % {
                        "calendar": (
                            f"{other.resource_email} ({other.calendar_name})"
                            if other.calendar_name
                            else other.resource_email
                        ),
                        "space": other.space.name,
                        "location": other.space.location.name,
                    }
                }
            )


class TokenStatus(models.TextChoices):
    VALID = "valid", _("Valid")
    EXPIRING = "expiring", _("Expiring soon")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class UserToken(models.Model):
    """A person's own OAuth grant for one provider (personal mode)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_tokens"
    )
    provider = models.ForeignKey(CalendarProvider, on_delete=models.CASCADE, related_name="tokens")
    account_email = models.EmailField()
    token = EncryptedJSONField(
        null=True, help_text=_("msal token cache or Google credentials, encrypted.")
    )
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=TokenStatus.choices, default=TokenStatus.VALID)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "provider"], name="one_token_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.account_email} ({self.provider})"


class LinkState(models.TextChoices):
    PENDING = "pending", _("Waiting to be pushed")
    SYNCED = "synced", _("In step")
    PAUSED = "paused", _("Paused (credentials need attention)")
    FAILED = "failed", _("Failed (will retry)")
    REMOVED = "removed", _("Removed remotely")


class SyncLink(models.Model):
    """One reservation (occurrence) and its remote event: where it lives and which version of
    the reservation it shows."""

    reservation = models.OneToOneField(
        "reservations.Reservation", on_delete=models.CASCADE, related_name="sync_link"
    )
    binding = models.ForeignKey(
        SpaceCalendar, on_delete=models.SET_NULL, null=True, blank=True, related_name="links"
    )
    provider = models.ForeignKey(CalendarProvider, on_delete=models.PROTECT, related_name="+")
    mailbox = models.EmailField(help_text=_("Whose calendar holds the event."))
    calendar_id = models.CharField(max_length=500, blank=True)
    external_id = models.CharField(max_length=1024, blank=True, db_index=True)
    ical_uid = models.CharField(max_length=1024, blank=True, db_index=True)
    # The recurring master an occurrence's event belongs to, as the pull read it: where the
    # feed reports a series by its master (Exchange Server), its deletion or its list of
    # occurrences names the occurrences' links by it (calendars/sync/pull/fetch.py).
    series_id = models.CharField(max_length=1024, blank=True, db_index=True)
    remote_version = models.CharField(
        max_length=255, blank=True, help_text=_("Graph changeKey or Google etag.")
    )
    pushed_version = models.PositiveIntegerField(
        default=0, help_text=_("The reservation version the remote event shows.")
    )
    state = models.CharField(max_length=8, choices=LinkState.choices, default=LinkState.PENDING)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set (and committed) right before a push or an export sends a create, cleared when the
    # created event's id is saved: a pull that meets an event it cannot attribute while a
    # create is in flight in that room reads the event's tag first instead of importing
    # Reserva's own event as a remote booking (calendars/sync/attribution.py). Left set when
    # the create failed: its event may exist all the same. (The create's idempotency key is
    # not stored: the client derives it from the reservation id, ``creation_key``.)
    creating_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a create was last sent, until its id is saved.")
    )
    # When a push (or an export) saved the id of an event it made. A feed may never report an
    # event made and deleted between two pulls (Exchange's SyncFolderItems collapses them),
    # so the next pull looks up the ones it does not report (calendars/sync/pull/fetch.py).
    event_made_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A failed push is retried by beat (calendars/sync/recovery.py) at this time, with capped
    # backoff, until SYNC_PUSH_GIVE_UP_HOURS after ``failing_since``; then it is cleared and
    # the admins are alerted once. Both are cleared when a push succeeds.
    next_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["binding", "state"], name="synclink_binding_state"),
            # Every pull asks for the creates in flight: a few rows, found without a scan.
            models.Index(
                fields=["creating_at"],
                name="synclink_creating",
                condition=models.Q(creating_at__isnull=False),
            ),
            models.Index(fields=["state", "next_attempt_at"], name="synclink_state_next_attempt"),
            models.Index(fields=["binding", "event_made_at"], name="synclink_binding_made"),
        ]

    def __str__(self) -> str:
        return f"{self.reservation_id} -> {self.external_id or '(not yet created)'}"


class JobKind(models.TextChoices):
    PUSH = "push", _("Push")
    EXPORT = "export", _("Bulk export")
    PULL = "pull", _("Pull")
    RECONCILE = "reconcile", _("Reconciliation")


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIAL = "partial", _("Finished with errors")
    FAILED = "failed", _("Failed")
    PAUSED = "paused", _("Paused (credentials need attention)")


class SyncJob(models.Model):
    """A record of one push, export, pull or reconciliation, so an administrator sees what
    happened."""

    kind = models.CharField(max_length=16, choices=JobKind.choices)
    binding = models.ForeignKey(
        SpaceCalendar, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    reservation = models.ForeignKey(
        "reservations.Reservation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sync_jobs",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    dry_run = models.BooleanField(default=False)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    deleted_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Which run owns a running job: a worker keeps working only while its claim is the one
    # stored, so a job taken over after a stale heartbeat never runs twice at once.
    claim = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="syncjob_status_heartbeat"),
            # The hourly pruning finds old records by it (calendars/retention.py).
            models.Index(fields=["finished_at"], name="syncjob_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"


class WebhookStatus(models.TextChoices):
    PENDING = "pending", _("Being created")
    ACTIVE = "active", _("Active")
    FAILING = "failing", _("Renewal failing (polling covers it)")
    STOPPED = "stopped", _("Stopped")


class WebhookSubscription(models.Model):
    """A Graph change-notification subscription or a Google push channel for one binding.

    ``secret`` is the clientState / channel token every notification must carry: encrypted at
    rest, compared in constant time, never shown. ``last_message_number`` is the highest Google
    message number accepted, so a replayed push changes nothing. A Google renewal makes a new
    row (a new channel) and stops the old one, so a binding may briefly have two live rows.
    """

    binding = models.ForeignKey(
        SpaceCalendar, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    remote_id = models.CharField(
        max_length=200, db_index=True, help_text=_("Graph subscription id / Google channel id.")
    )
    resource_id = models.CharField(max_length=200, blank=True, help_text=_("Google resource id."))
    secret = EncryptedTextField(editable=False)
    status = models.CharField(
        max_length=8, choices=WebhookStatus.choices, default=WebhookStatus.PENDING
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    last_message_number = models.BigIntegerField(default=0)
    last_notification_at = models.DateTimeField(null=True, blank=True)
    notifications = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When the admins were last emailed about a failing renewal: one email per failure streak.
    alerted_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    renewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "expires_at"], name="webhook_status_expiry")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} webhook for {self.binding_id} ({self.status})"


class SyncLock(models.Model):
    """A named lock that one worker holds for a short while (``calendars/locks.py``): a row
    whose unique name is the lock, so it works the same on SQLite and PostgreSQL and across
    processes. ``expires_at`` bounds how long a dead worker can keep it."""

    name = models.CharField(max_length=120, unique=True)
    claim = models.CharField(max_length=32)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name
