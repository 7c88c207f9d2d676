"""Reserva settings, read from the environment only (django-environ).

Every variable is documented in README.md and mirrored in .env.example. Nothing secret has a
default except SECRET_KEY while DEBUG is on, so a production deployment that forgets one fails
at start instead of running with a guessable value.
"""

import base64
import hashlib
import importlib.util
import os
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from integrations.registry import public_hosts

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Local state of the embedded default: SQLite, broker queue, mail. Another folder gives a second
# stack of its own (the test of make run's stop starts one beside a running make run).
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production-0123456789"  # noqa: S105 - used only when DEBUG is on
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else environ.Env.NOTSET)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The address people and providers reach Reserva at (links in emails, OAuth redirect URIs,
# webhook URLs). Behind a proxy this is the proxy's public https address.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Trust X-Forwarded-Proto / X-Forwarded-Host from the reverse proxy in front of Reserva.
# Only turn on when a proxy that overwrites these headers is the only way in.
TRUST_PROXY_HEADERS = env.bool("TRUST_PROXY_HEADERS", default=False)
if TRUST_PROXY_HEADERS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
# The client's address for the sign-in lockouts and the token endpoint's limit is the last hop
# of X-Forwarded-For behind that proxy; without it, everyone would share the proxy's address
# and ten failures from anyone would lock everybody out.
ALLAUTH_TRUSTED_PROXY_COUNT = 1 if TRUST_PROXY_HEADERS else 0

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "simple_history",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally, no CDN
    "csp",  # Content-Security-Policy header (django-csp); its checks flag outdated settings
    "oauth2_provider",
    "reservations",
    "calendars",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reservations.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'reserva.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes every transaction take SQLite's write lock when it begins, so the booking
    # service's check-then-insert is serialized across processes; WAL lets readers go on
    # meanwhile, and the busy timeout makes writers queue instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so the test suite's subprocesses (concurrency tests, a Celery worker)
    # see the same test database; one per test run, so two runs side by side do not collide.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-reserva-{os.getpid()}.sqlite3")}
elif env.bool("DATABASE_POOL", default=False):
    # A psycopg 3 connection pool per process (Django's "pool" option), opened by the first
    # query of each process, so every gunicorn worker and every Celery child has its own
    # (nothing queries the database before they fork). A connection goes back to the pool at
    # the end of each request; CONN_MAX_AGE must then be 0, Django refuses both at once.
    # Celery's Django fix-up closes the pool of a prefork child around each task, as it
    # closes plain connections, so there the pool changes nothing.
    if env.int("CONN_MAX_AGE", default=0):
        raise ImproperlyConfigured("DATABASE_POOL=true needs CONN_MAX_AGE=0 (or unset)")
    if importlib.util.find_spec("psycopg_pool") is None:
        raise ImproperlyConfigured("DATABASE_POOL=true needs psycopg_pool (psycopg[pool])")
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection it hands out
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        # psycopg_pool's own default keeps 4 connections open per process; a gunicorn sync
        # worker uses one at a time.
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=4),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_DIR = VAR_DIR / "broker"
# Redis redelivers a message that a worker took but never acknowledged (it was killed) after
# this many seconds. It must exceed the longest task that relies on it: a push or a pull is
# seconds, at worst a few minutes of provider retries (five attempts of a 30 s timeout, a
# Retry-After of up to 120 s, the limiter's 60 s wait); exports do not rely on redelivery
# (acks early, resumed by beat). Beat recovers lost work sooner anyway (SYNC_LOCK_TTL_SECONDS).
BROKER_VISIBILITY_TIMEOUT = env.int("BROKER_VISIBILITY_TIMEOUT", default=900)
# A retry's countdown stays well under it: Redis hands an ETA message that waits longer than
# the visibility timeout to a second worker, and again every timeout (a redelivery storm).
SYNC_TASK_MAX_COUNTDOWN_SECONDS = BROKER_VISIBILITY_TIMEOUT // 3
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT}
else:
    # Embedded default: kombu's filesystem transport needs no server; the web process, the
    # worker and beat share the queue through files under var/broker/ (made by config/celery.py
    # when Celery first reads these settings, not here: importing settings changes nothing).
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
# The tasks are idempotent: one whose worker process died mid-run is put back on the queue at
# once (a pool child killed; a whole worker killed waits for the visibility timeout or beat).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# The tasks that talk to calendar providers name their own queue ("sync") on their decorators
# (calendars/tasks.py); every worker (make run: -Q default,sync) consumes both.
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # Bulk exports whose worker died are finished by another (calendars/sync/export.py).
    "resume-stale-exports": {"task": "calendars.tasks.resume_stale_exports", "schedule": 30.0},
    # Pushes whose worker died (a "running" job gone quiet, a queued push lost with its
    # message) are recorded as failed and queued again (calendars/sync/recovery.py).
    "reclaim-lost-pushes": {"task": "calendars.tasks.reclaim_lost_pushes", "schedule": 30.0},
    # Failed pushes retried with capped backoff for SYNC_PUSH_GIVE_UP_HOURS, then one alert.
    "retry-failed-pushes": {"task": "calendars.tasks.retry_failed_pushes", "schedule": 60.0},
    # Personal calendar tokens: silent refresh, expiring / expired / revoked (calendars/tokens.py).
    "check-user-tokens": {"task": "calendars.tasks.check_user_tokens", "schedule": 24 * 3600.0},
    # Poll the bound rooms that are due (calendars/sync/pull/); webhooks only add pulls.
    "pull-due-bindings": {"task": "calendars.tasks.pull_due_bindings", "schedule": 60.0},
    # Webhooks renewed a day before they expire; missing ones created (calendars/subscriptions.py).
    "renew-webhooks": {"task": "calendars.tasks.renew_subscriptions", "schedule": 3600.0},
    # Finished sync job records past SYNC_JOB_KEEP_DAYS / SYNC_IDLE_PULL_KEEP_HOURS deleted.
    "prune-sync-jobs": {"task": "calendars.tasks.prune_sync_jobs", "schedule": 3600.0},
    # No-shows released within a minute of their check-in window closing, and the check-in
    # reminder emailed when a window opens (reservations/checkin.py).
    "release-no-shows": {"task": "reservations.release_no_shows", "schedule": 30.0},
    "send-check-in-reminders": {"task": "reservations.send_check_in_reminders", "schedule": 60.0},
    # The reminder BOOKING_REMINDER_MINUTES before a booking starts (reservations/reminders.py).
    "send-booking-reminders": {"task": "reservations.send_booking_reminders", "schedule": 60.0},
    # Bookings still awaiting approval at their deadline are declined (reservations/approvals.py).
    "decline-overdue-approvals": {
        "task": "reservations.decline_overdue_approvals",
        "schedule": 60.0,
    },
    # Room displays not seen for 15 minutes in opening hours: one email per outage
    # (reservations/displays.py).
    "alert-offline-displays": {"task": "reservations.alert_offline_displays", "schedule": 60.0},
    # The Insights rollup of yesterday and today (reservations/insights/rollup.py); older
    # days are rebuilt with manage.py rollup_insights.
    "rollup-insights": {"task": "reservations.rollup_insights", "schedule": 900.0},
}
# The daily reconciliation (calendars/sync/reconcile.py): every binding's window compared with
# its calendar and repaired, starting at RECONCILE_HOUR (UTC), rooms spread over
# RECONCILE_SPREAD_MINUTES; the admins are emailed when one room needed more repairs than
# RECONCILE_ALERT_THRESHOLD. RECONCILE_HOUR=-1 turns the schedule off.
RECONCILE_HOUR = env.int("RECONCILE_HOUR", default=3)
RECONCILE_SPREAD_MINUTES = env.int("RECONCILE_SPREAD_MINUTES", default=60)
RECONCILE_ALERT_THRESHOLD = env.int("RECONCILE_ALERT_THRESHOLD", default=5)
if 0 <= RECONCILE_HOUR <= 23:
    # A tick that queues the rooms whose slot has come (no long ETA waits in the broker).
    CELERY_BEAT_SCHEDULE["reconcile-bindings"] = {
        "task": "calendars.tasks.reconcile_bindings",
        "schedule": 300.0,
    }
# Where a connection alias may send a credential (calendars/endpoints.py): host names (https
# on port 443) or origins (scheme://host:port, the only way to allow http or another port).
# Default: Microsoft's (national clouds included) and Google's public hosts. An on-premises
# server, a proxy or the sandbox (make run adds https://127.0.0.1:8443) is added here.
PROVIDER_ENDPOINT_ALLOWLIST = env.list("PROVIDER_ENDPOINT_ALLOWLIST", default=public_hosts())
# Graph subscriptions / Google push channels at PUBLIC_BASE_URL; off = polling only.
CALENDAR_WEBHOOKS = env.bool("CALENDAR_WEBHOOKS", default=True)
# Exchange Server change notifications (manage.py ews_listen, calendars/streams.py): each
# GetStreamingEvents connection stays open this many minutes (1-30) before it is opened again,
# carries up to this many rooms (1-200), and a listener looks for unserved rooms this often.
EWS_STREAM_MINUTES = env.int("EWS_STREAM_MINUTES", default=15)
EWS_STREAM_GROUP_SIZE = env.int("EWS_STREAM_GROUP_SIZE", default=200)
EWS_LISTEN_SCAN_SECONDS = env.float("EWS_LISTEN_SCAN_SECONDS", default=10.0)
# An export whose heartbeat is older than this is taken over (its worker beats every third).
SYNC_EXPORT_STALE_SECONDS = env.int("SYNC_EXPORT_STALE_SECONDS", default=60)
# Locks and claims (calendars/locks.py, the pull lock, running push jobs) live this long past
# their holder's last heartbeat (renewed every third of it): a killed worker blocks no longer.
SYNC_LOCK_TTL_SECONDS = env.float("SYNC_LOCK_TTL_SECONDS", default=45.0)
# A queued pull that has not started after this long was lost with its worker: queued again.
SYNC_PULL_REQUEST_STALE_SECONDS = env.int("SYNC_PULL_REQUEST_STALE_SECONDS", default=60)
# A waiting push (link pending or behind its reservation) untouched for this long, with no
# push running, was lost with its worker's message: queued again by beat.
SYNC_PUSH_LOST_SECONDS = env.int("SYNC_PUSH_LOST_SECONDS", default=60)
# Failed pushes: beat retries after 60 s, doubling up to this cap, ...
SYNC_PUSH_RETRY_BASE_SECONDS = env.int("SYNC_PUSH_RETRY_BASE_SECONDS", default=60)
SYNC_PUSH_RETRY_CAP_SECONDS = env.int("SYNC_PUSH_RETRY_CAP_SECONDS", default=1800)
# ... for this long after the first failure in a row; then the admins get one email.
SYNC_PUSH_GIVE_UP_HOURS = env.float("SYNC_PUSH_GIVE_UP_HOURS", default=24.0)
# Sync job records (the admin's history) kept this long once finished; a pull that changed
# nothing only this many hours (calendars/retention.py, beat hourly).
SYNC_JOB_KEEP_DAYS = env.int("SYNC_JOB_KEEP_DAYS", default=30)
SYNC_IDLE_PULL_KEEP_HOURS = env.int("SYNC_IDLE_PULL_KEEP_HOURS", default=24)

# --- Cache: rate-limit counters and sign-in lockouts ----------------------------------------
# Every limit (the API's per-client rate, /o/token/, the portal's and the admin's sign-in
# lockouts) counts in this cache. On Redis the counts are shared by all gunicorn workers and
# hosts; local memory (no CACHE_URL / REDIS_URL) is per process, right for `make run` only.
# By default the cache shares the broker's Redis database: its keys carry CACHE_KEY_PREFIX and
# its clear() deletes only those (config/cache.py), never FLUSHDB, which would drop the queues.
CACHE_URL = env.str("CACHE_URL", default=REDIS_URL)
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="reserva:cache")
if CACHE_URL:
    if not CACHE_KEY_PREFIX:  # unprefixed keys could not be told from the broker's
        raise ImproperlyConfigured("CACHE_KEY_PREFIX may not be empty when the cache is Redis")
    CACHES = {
        "default": {
            "BACKEND": "config.cache.PrefixedRedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            # An unreachable Redis fails a request in seconds instead of hanging a worker.
            "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# --- Auth, i18n, time -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Signs nobody in: reads a person's permissions in one query for the backends below.
    "reservations.accounts.PermissionsBackend",
    "django.contrib.auth.backends.ModelBackend",  # the admin's login form
    "allauth.account.auth_backends.AuthenticationBackend",  # the portal: username or email
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:find"
# Portal sign-in (django-allauth): local accounts created by administrators, signing in with a
# username or an email address; password reset by email. Sign-up stays closed unless
# PORTAL_OPEN_SIGNUP is on (reservations.accounts.PortalAccountAdapter).
PORTAL_OPEN_SIGNUP = env.bool("PORTAL_OPEN_SIGNUP", default=False)
ACCOUNT_ADAPTER = "reservations.accounts.PortalAccountAdapter"
ACCOUNT_FORMS = {"login": "reservations.accounts.PortalLoginForm"}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# Administrators create the accounts with known addresses, so there is nothing to verify.
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Reserva] "
ACCOUNT_PRESERVE_USERNAME_CASING = False
# Sign-in lockout, shared by the portal and the admin (reservations.accounts): 5 failures for
# one login in 5 minutes lock it, 10 from one address in a minute lock the address, even for
# the right password. allauth's default, spelled out because the README promises it; the
# counters live in the cache above.
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# Sign-in with Microsoft / Google (calendars.signin, allauth's OpenID Connect provider). The
# apps come from these variables or from a calendar provider with "sign in enabled"; allauth's
# SocialApp table (plaintext secrets) is never used. Only existing, active users whose address
# the provider vouches for may sign in, unless SIGNIN_CREATES_ACCOUNTS is on.
SOCIALACCOUNT_ADAPTER = "calendars.signin.SignInAdapter"
SOCIALACCOUNT_STORE_TOKENS = False  # allauth would keep them in plaintext; sign-in needs none
SOCIALACCOUNT_EMAIL_AUTHENTICATION = (
    False  # the adapter matches by email; allauth's wipes passwords
)
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10
SIGNIN_CREATES_ACCOUNTS = env.bool("SIGNIN_CREATES_ACCOUNTS", default=False)
MICROSOFT_SIGNIN_CLIENT_ID = env.str("MICROSOFT_SIGNIN_CLIENT_ID", default="")
MICROSOFT_SIGNIN_CLIENT_SECRET = env.str("MICROSOFT_SIGNIN_CLIENT_SECRET", default="")
MICROSOFT_SIGNIN_TENANT = env.str("MICROSOFT_SIGNIN_TENANT", default="")
MICROSOFT_SIGNIN_AUTHORITY = env.str(
    "MICROSOFT_SIGNIN_AUTHORITY", default="https://login.microsoftonline.com"
)
GOOGLE_SIGNIN_CLIENT_ID = env.str("GOOGLE_SIGNIN_CLIENT_ID", default="")
GOOGLE_SIGNIN_CLIENT_SECRET = env.str("GOOGLE_SIGNIN_CLIENT_SECRET", default="")
GOOGLE_SIGNIN_SERVER_URL = env.str(
    "GOOGLE_SIGNIN_SERVER_URL", default="https://accounts.google.com"
)
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")  # the default zone for people without one
USE_I18N = True
USE_TZ = True

# --- REST API, OAuth for external clients, iCalendar feeds ----------------------------------
# External systems get OAuth 2 client-credentials tokens from Reserva (/o/token/); the portal's
# own pages use the session. Errors are {"error": {"code", "message", "fields"}}.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "reservations.api.authentication.ClientTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["reservations.api.permissions.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["reservations.api.throttling.ClientRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "reservations.api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "reservations.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["reservations.api.parsers.JSONParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Reserva API",
    "DESCRIPTION": "Book workplace spaces from other systems. See README.md, REST API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SpaceKindEnum": "reservations.models.SpaceKind",
        "ReservationKindEnum": "reservations.models.ReservationKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "reservations.api.errors.document_error_responses",
    ],
}
# /api/schema/ and /api/docs/ open to anyone (true), or only to signed-in users and API
# tokens (false); the schema lists endpoints and fields, never data.
API_PUBLIC_SCHEMA = env.bool("API_PUBLIC_SCHEMA", default=True)
# Requests per client (OAuth application, or user for session calls), e.g. "600/minute".
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="600/minute")
# Requests to /o/token/, /o/revoke_token/ and /o/introspect/ together (failed client
# authentication included) per client id and per address.
# A client needs one token an hour; these only stop secret guessing and token floods.
OAUTH_TOKEN_RATE_LIMIT = env.str("OAUTH_TOKEN_RATE_LIMIT", default="10/minute")
OAUTH_TOKEN_ADDRESS_RATE_LIMIT = env.str("OAUTH_TOKEN_ADDRESS_RATE_LIMIT", default="30/minute")
OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Read spaces, availability and reservations", "write": "Book and cancel"},
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("API_TOKEN_EXPIRE_SECONDS", default=3600),
    "PKCE_REQUIRED": True,
    # RFC 9700 (OAuth 2.0 Security BCP): tokens hashed at rest, bearer only in the header, no
    # implicit or password grant, https redirect URIs. Only client credentials are used here.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    # A deactivated owner's clients get no new token (reservations/api/oauth.py).
    "OAUTH2_VALIDATOR_CLASS": "reservations.api.oauth.ActiveOwnerValidator",
}
# How far back the iCalendar feeds reach (days); the future is bounded by booking horizons.
FEED_PAST_DAYS = env.int("FEED_PAST_DAYS", default=30)

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Uploaded files: floor maps and space photos (reservations/uploads.py) --------------------
# Reserva serves them itself, to signed-in people only (reservations/views/media.py): a floor
# plan is not for the public. MEDIA_ROOT must persist across deploys and be shared by every web
# host (a volume); back it up with the database.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "/media/"
# Largest floor map or photo accepted, in bytes (PNG, JPEG or SVG, checked by content).
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=5 * 1024 * 1024)

# --- Portal -----------------------------------------------------------------------------------
# Spaces per page of the schedule (one floor or all floors, previous/next links beyond): what
# one request renders stays bounded however many spaces a location holds.
SCHEDULE_PAGE_SIZE = env.int("SCHEDULE_PAGE_SIZE", default=50)

# --- Email ----------------------------------------------------------------------------------
# No EMAIL_URL in development (make run): reservations.mail.LogEmailBackend logs each email at
# INFO (recipients, subject, the text part) instead of printing the whole MIME message, which
# the Celery worker would log line by line at WARNING.
EMAIL_CONFIG = env.email_url(
    "EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"
)
vars().update(EMAIL_CONFIG)
if DEBUG and "EMAIL_URL" not in os.environ:
    EMAIL_BACKEND = "reservations.mail.LogEmailBackend"
# The organisation's name at the top of every email to people (reservations/emails.py).
ORGANISATION_NAME = env.str("ORGANISATION_NAME", default="Reserva")
# Minutes before its start that a booking's reminder email goes out (beat, every minute;
# reservations/reminders.py); 0 turns reminders off. People turn theirs off in their profile.
BOOKING_REMINDER_MINUTES = env.int("BOOKING_REMINDER_MINUTES", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Reserva <reserva@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))  # filemail://

# --- Secrets at rest ------------------------------------------------------------------------
# Fernet keys, newest first; older keys still decrypt so keys can rotate.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    # Development only: a key derived from the (development) SECRET_KEY, so `make run` works
    # without configuration. Production must set real keys (a deploy check says so).
    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(f"fernet:{SECRET_KEY}".encode()).digest()).decode()
    ]

# --- Security -------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): every script, style, image, font and request comes
# from Reserva itself; no inline script anywhere (the portal's JS is in static/, the admin
# uses none, the Swagger page loads its start-up script as a file), no eval, no plugins, no
# framing. form-action is left out on purpose: signing in with Microsoft/Google and
# connecting a calendar post a form that redirects to the provider, which browsers check
# against form-action too. Extend it here (README, "Content-Security-Policy"). The two
# variables are read into private names: django-csp's checks take settings named CSP_* for
# the outdated django-csp 3 configuration.
_CSP_REPORT_ONLY = env.bool("CSP_REPORT_ONLY", default=False)
_CSP_REPORT_URI = env.str("CSP_REPORT_URI", default="")
_CSP = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # the admin's and Swagger UI's icons are data: URIs
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        **({"report-uri": [_CSP_REPORT_URI]} if _CSP_REPORT_URI else {}),
    }
}
if _CSP_REPORT_ONLY:
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
