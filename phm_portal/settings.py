"""Settings of the portal, read from the environment (see README.md, "Configuration").

With no environment the portal refuses to start without a secret. `make run` and
`make test` set PHM_DEMO=1: the embedded demo, with SQLite and files under var/,
the filesystem Celery broker, a secret generated once under var/, and plain HTTP on
this machine (no HTTPS redirect, no secure-only cookies). DEBUG is off unless DEBUG=1,
in the demo too, so that a missing page or an error shows the portal's own page.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from phm_portal.lib.env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEMO_MODE = env_bool("PHM_DEMO", False)
DEBUG = env_bool("DEBUG", False)
# The embedded demo (or DEBUG) answers on plain HTTP on this machine, static files from
# the source folders: no collectstatic, no HTTPS redirect, no secure-only cookies.
LOCAL_HTTP = DEMO_MODE or DEBUG

VAR_DIR = Path(env_str("PHM_VAR_DIR") or BASE_DIR / "var").resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Return the configured secret; only the embedded demo may make one of its own."""
    key = env_secret("SECRET_KEY")
    if key:
        return key
    if not DEMO_MODE:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE naming a file that "
            "holds it) to a long random value, or PHM_DEMO=1 for the embedded demo."
        )
    key_file = VAR_DIR / "demo_secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()

from phm_portal.lib.crypto import decode_key, new_key  # noqa: E402 - needs nothing of settings


# --- Keys for NHS numbers at rest (consent; see phm_portal/lib/crypto.py) -------
def _data_key(name: str, demo_file: str) -> str:
    """Return a base64 32-byte key from NAME or NAME_FILE; only the demo may make its own."""
    key = env_secret(name)
    if not key:
        if not DEMO_MODE:
            raise ImproperlyConfigured(
                f"{name} is not set. Set {name} (or {name}_FILE naming a file that holds it) to "
                "32 random bytes in base64 (`openssl rand -base64 32`), or PHM_DEMO=1 for the "
                "embedded demo."
            )
        key_file = VAR_DIR / demo_file
        if not key_file.exists():
            key_file.write_text(new_key(), encoding="utf-8")
            key_file.chmod(0o600)
        key = key_file.read_text(encoding="utf-8").strip()
    decode_key(key, name=name)
    return key


# The blind index lets the database find a patient by NHS number without holding it.
PHM_BLIND_INDEX_KEY = _data_key("PHM_BLIND_INDEX_KEY", "demo_blind_index_key")
# NHS numbers and patients' requests are stored encrypted (AES-256-GCM) under this key;
# keys listed in PHM_FIELD_ENCRYPTION_OLD_KEYS (comma-separated) still decrypt.
PHM_FIELD_ENCRYPTION_KEY = _data_key("PHM_FIELD_ENCRYPTION_KEY", "demo_field_encryption_key")
PHM_FIELD_ENCRYPTION_OLD_KEYS = [
    k.strip() for k in (env_secret("PHM_FIELD_ENCRYPTION_OLD_KEYS") or "").split(",") if k.strip()
]
# A national data opt-out check is used for this many days after the national service ran it.
PHM_NATIONAL_OPT_OUT_DAYS = env_int("PHM_NATIONAL_OPT_OUT_DAYS", 30)
if PHM_NATIONAL_OPT_OUT_DAYS < 1:
    raise ImproperlyConfigured("PHM_NATIONAL_OPT_OUT_DAYS must be at least 1.")
# Assurance (governance.assurance): an approved flow whose DPIA review is overdue by more
# than this many days is suspended by the daily watch.
DPIA_REVIEW_GRACE_DAYS = env_int("PHM_DPIA_REVIEW_GRACE_DAYS", 30)
# Patients' online Type 1 requests accepted per client per hour (the public form).
PHM_OPT_OUT_REQUESTS_PER_HOUR = env_int("PHM_OPT_OUT_REQUESTS_PER_HOUR", 10)
# NHS numbers one person may ask the opt-out register about per hour (POST
# /api/v1/opt-outs/check/; 429 with Retry-After beyond). Anyone but a CSU admin: two
# checks of the largest practice's whole list (~100,000 patients). CSU admins: a whole
# ICS population (~1.2 million) with room for a second look at part of it.
PHM_REGISTER_CHECK_NUMBERS_PER_HOUR = env_int("PHM_REGISTER_CHECK_NUMBERS_PER_HOUR", 200_000)
PHM_REGISTER_CHECK_ADMIN_NUMBERS_PER_HOUR = env_int(
    "PHM_REGISTER_CHECK_ADMIN_NUMBERS_PER_HOUR", 2_000_000
)
if PHM_REGISTER_CHECK_NUMBERS_PER_HOUR < 1 or PHM_REGISTER_CHECK_ADMIN_NUMBERS_PER_HOUR < 1:
    raise ImproperlyConfigured(
        "PHM_REGISTER_CHECK_NUMBERS_PER_HOUR and PHM_REGISTER_CHECK_ADMIN_NUMBERS_PER_HOUR "
        "must be at least 1."
    )
# --- MESH and the national "Check for National Data Opt-outs" service ---------------
# With PHM_MESH_URL set, a check's file goes to the service over MESH and its reply is
# read from the portal's inbox by a beat task; without it, files are exchanged by hand.
PHM_MESH_URL = (env_str("PHM_MESH_URL") or "").strip().rstrip("/")
PHM_MESH_MAILBOX = (env_str("PHM_MESH_MAILBOX") or "").strip().upper()
PHM_MESH_PASSWORD = env_secret("PHM_MESH_PASSWORD")
PHM_MESH_SHARED_KEY = env_secret("PHM_MESH_SHARED_KEY")
PHM_MESH_CLIENT_CERT = (env_str("PHM_MESH_CLIENT_CERT") or "").strip()
PHM_MESH_CLIENT_KEY = (env_str("PHM_MESH_CLIENT_KEY") or "").strip()
PHM_MESH_CA_BUNDLE = (env_str("PHM_MESH_CA_BUNDLE") or "").strip()
PHM_MESH_POLL_SECONDS = env_int("PHM_MESH_POLL_SECONDS", 300)
PHM_NDOP_MAILBOX = (env_str("PHM_NDOP_MAILBOX") or "").strip().upper()
# The workflow organisations name for the service; confirm it when the mailbox is set up.
PHM_NDOP_WORKFLOW_ID = (env_str("PHM_NDOP_WORKFLOW_ID") or "SPINE_NTT_UPHOLDING").strip()
PHM_NDOP_REPLY_HOURS = env_int("PHM_NDOP_REPLY_HOURS", 24)
for _name, _value in (
    ("PHM_MESH_MAILBOX", PHM_MESH_MAILBOX),
    ("PHM_NDOP_MAILBOX", PHM_NDOP_MAILBOX),
):
    if _value and not (_value.isascii() and _value.isalnum()):
        raise ImproperlyConfigured(
            f"{_name} is a MESH mailbox id: letters and digits only (got {_value!r}); the "
            "national service does not answer a file whose name holds other characters."
        )
if PHM_MESH_POLL_SECONDS < 1 or PHM_NDOP_REPLY_HOURS < 1:
    raise ImproperlyConfigured("PHM_MESH_POLL_SECONDS and PHM_NDOP_REPLY_HOURS must be at least 1.")
if PHM_MESH_URL:
    _missing = [
        name
        for name, value in (
            ("PHM_MESH_MAILBOX", PHM_MESH_MAILBOX),
            ("PHM_MESH_PASSWORD", PHM_MESH_PASSWORD),
            ("PHM_MESH_SHARED_KEY", PHM_MESH_SHARED_KEY),
            ("PHM_NDOP_MAILBOX", PHM_NDOP_MAILBOX),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"PHM_MESH_URL is set, so MESH needs {', '.join(_missing)} too (a secret may be "
            "given as NAME_FILE naming a file that holds it)."
        )
    if bool(PHM_MESH_CLIENT_CERT) != bool(PHM_MESH_CLIENT_KEY):
        raise ImproperlyConfigured("Set PHM_MESH_CLIENT_CERT and PHM_MESH_CLIENT_KEY together.")
    for _name, _value in (
        ("PHM_MESH_CLIENT_CERT", PHM_MESH_CLIENT_CERT),
        ("PHM_MESH_CLIENT_KEY", PHM_MESH_CLIENT_KEY),
        ("PHM_MESH_CA_BUNDLE", PHM_MESH_CA_BUNDLE),
    ):
        if _value and not Path(_value).is_file():
            raise ImproperlyConfigured(f"{_name} names {_value!r}, which is not a file.")
# The largest Type 1 or national opt-out file accepted (413 above).
PHM_OPT_OUT_FILE_MAX_BYTES = env_int("PHM_OPT_OUT_FILE_MAX_BYTES", 20 * 1024 * 1024)
# Wraps every file's data key and every programme's pseudonymisation key (datasets).
KEY_ENCRYPTION_KEY = decode_key(
    _data_key("PHM_KEY_ENCRYPTION_KEY", "demo_key_encryption_key"), name="PHM_KEY_ENCRYPTION_KEY"
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if LOCAL_HTTP else [])
if not LOCAL_HTTP and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set: with DEBUG off, name the host names the portal answers to "
        "(comma-separated)."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # intcomma: counts and populations with thousands separators
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_celery_results",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "phm_portal",
    "governance",
    "consent",
    "notices",
    "datasets",
    "destruction",
]

MIDDLEWARE = [
    # First: a database that cannot be reached answers 503 with a plain page.
    "phm_portal.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads request.POST: a file name with a folder path is a 400.
    "phm_portal.middleware.StrictUploadsMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # CSU admins and DPOs confirm a one-time code before anything else (PHM_REQUIRE_2FA).
    "phm_portal.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "phm_portal.urls"
WSGI_APPLICATION = "phm_portal.wsgi.application"

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
                "phm_portal.context_processors.portal",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
_database_url = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL Django knows: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock when a transaction starts, so two writers queue
        # instead of failing with "database is locked" half-way through.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Users and sign-in ----------------------------------------------------------
AUTH_USER_MODEL = "governance.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses every sign-in of a locked-out account or client (django-axes).
    "phm_portal.signin.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No anonymous user row: the public pages need no object permissions.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env_int("PHM_SESSION_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True  # the age above counts from the last request: inactivity

DEMO_PASSWORD = env_secret("DEMO_PASSWORD") or "phm-demo-2026"

# Repeated failed sign-ins (pages and POST /api/v1/auth/token/) lock an account out at
# the client's address for a while (django-axes; the policy is in phm_portal.signin);
# failures, lockouts and attacks are audit events.
PHM_LOGIN_FAILURE_LIMIT = env_int("PHM_LOGIN_FAILURE_LIMIT", 5)
if PHM_LOGIN_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("PHM_LOGIN_FAILURE_LIMIT must be at least 1.")
# Failures on one account from all addresses (on all accounts from one address) within
# the lockout window that put it under attack: addresses the account has not signed in
# from lately get one try, and the CSU admins are told.
PHM_LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("PHM_LOGIN_ACCOUNT_FAILURE_LIMIT", 10)
PHM_LOGIN_ADDRESS_FAILURE_LIMIT = env_int("PHM_LOGIN_ADDRESS_FAILURE_LIMIT", 20)
for _name in ("PHM_LOGIN_ACCOUNT_FAILURE_LIMIT", "PHM_LOGIN_ADDRESS_FAILURE_LIMIT"):
    if globals()[_name] < PHM_LOGIN_FAILURE_LIMIT:
        raise ImproperlyConfigured(f"{_name} must be at least PHM_LOGIN_FAILURE_LIMIT.")
_lockout_minutes = env_int("PHM_LOGIN_LOCKOUT_MINUTES", 15)
if _lockout_minutes < 1:
    raise ImproperlyConfigured("PHM_LOGIN_LOCKOUT_MINUTES must be at least 1.")
AXES_COOLOFF_TIME = timedelta(minutes=_lockout_minutes)
AXES_FAILURE_LIMIT = "phm_portal.signin.failure_limit"
# That account from that client only: locking an account from any client (or a client
# for any account, when staff share an address) let a stranger lock staff out.
if env_str("PHM_LOGIN_LOCKOUT_BY") not in (None, "username+ip_address"):
    raise ImproperlyConfigured(
        "PHM_LOGIN_LOCKOUT_BY is no longer read: sign-ins are always locked per account "
        "and client address, so that nobody elsewhere can lock staff out. Remove it."
    )
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "phm_portal.lib.client.client_address"
AXES_USERNAME_CALLABLE = "phm_portal.signin.sign_in_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "phm_portal.signin.lockout_response"
AXES_VERBOSE = False

# Second factor (TOTP with recovery codes) for CSU admins and DPOs, on pages and for API
# tokens alike. On everywhere except the embedded demo, whose users sign in without one.
PHM_REQUIRE_2FA = env_bool("PHM_REQUIRE_2FA", not DEMO_MODE)
PHM_2FA_ROLES = ("csu_admin", "dpo")
OTP_TOTP_ISSUER = "PHM governance portal"
# An API token (POST /api/v1/auth/token/) works for this many hours, then a new one is asked
# for; it dies sooner when its holder's password or second factor changes, or is revoked.
PHM_API_TOKEN_HOURS = env_int("PHM_API_TOKEN_HOURS", 12)
if PHM_API_TOKEN_HOURS < 1:
    raise ImproperlyConfigured("PHM_API_TOKEN_HOURS must be at least 1.")

# --- Cache (rate limits, cached public pages) ---------------------------------
# Shared by every process of one machine (file-based) unless CACHE_URL names Redis,
# which workers and web servers on several machines then share.
_cache_url = env_str("CACHE_URL")
if _cache_url:
    if not _cache_url.startswith(("redis://", "rediss://")):
        raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL; got {_cache_url!r}")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Internationalisation -----------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

# --- Static files and storage -------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = VAR_DIR / "files"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if LOCAL_HTTP
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# WhiteNoise serves the demo's static files straight from the source folders (runserver
# serves none with DEBUG off).
WHITENOISE_USE_FINDERS = LOCAL_HTTP

# --- Security -----------------------------------------------------------------
# Content Security Policy (django-csp), in the demo too: scripts and styles only from
# the portal's own static files; no inline script, no inline style, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        # The NHS.UK stylesheet loads the Frutiger font from the NHS's own host.
        "font-src": ["'self'", "https://assets.nhs.uk"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Behind the portal's TLS proxy: the client's address (sign-in lockouts, rate limits) is
# the last X-Forwarded-For entry, whatever DEBUG is (phm_portal.lib.client), and, with
# DEBUG off, X-Forwarded-Proto says whether the client used HTTPS.
PHM_BEHIND_TLS_PROXY = env_bool("PHM_BEHIND_TLS_PROXY", False)
if not LOCAL_HTTP:
    SECURE_SSL_REDIRECT = env_bool("PHM_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("PHM_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if PHM_BEHIND_TLS_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Our own: hashed tokens that expire, and sessions only with the second factor.
        "phm_portal.authentication.ApiTokenAuthentication",
        "phm_portal.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "phm_portal.rest.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "phm_portal.rest.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "phm_portal.rest.JSONParser",
        "rest_framework.parsers.FormParser",
        "phm_portal.rest.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PHM governance and consent portal API",
    "DESCRIPTION": "The REST contract of the portal (v1). Every action of the pages, with the same permissions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "phm_portal.rest.add_error_responses",
    ],
    # Swagger UI served from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status"; name their enums apart in the schema.
    "ENUM_NAME_OVERRIDES": {
        "ProgrammeStatusEnum": "governance.models.Programme.Status",
        "DataFlowStatusEnum": "governance.models.DataFlow.Status",
        "NoticeVersionStatusEnum": "notices.models.NoticeVersion.Status",
    },
}

# --- Celery -------------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    # kombu's transport, but each message written whole before a worker may read it.
    CELERY_BROKER_TRANSPORT = "phm_portal.lib.filesystem_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Broadcast (remote control) exchanges too, else kombu writes them under the cwd.
        "control_folder": str(_broker_dir / "control"),
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # On Linux a waiting worker is woken as a message arrives (inotify). Elsewhere the
        # folder is polled: look often, so a job's steps (start, chunks, finish) follow
        # each other quickly; an idle worker spends about 1% of a core on it.
        "polling_interval": 0.02,
    }
# Progress and reports live in database rows. The result backend (the database) only
# lets a chord know when every chunk of a job is done; other tasks keep no result.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXPIRES = 24 * 3600
# How often a chord looks whether all its chunks are done (the database backend polls).
CELERY_RESULT_CHORD_RETRY_INTERVAL = 0.25
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task whose worker died unacknowledged is delivered again after this long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("PHM_BROKER_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
# Workers listen here; tasks they send (chunks, chords) go here too.
CELERY_TASK_DEFAULT_QUEUE = env_str("PHM_CELERY_QUEUE") or "celery"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat's jobs-recover round looks for work lost with a worker or a message.
PHM_JOB_RESEND_SECONDS = env_int("PHM_JOB_RESEND_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "programmes-mark-ended": {
        "task": "governance.tasks.programmes_mark_ended",
        "schedule": env_int("PHM_PROGRAMME_CHECK_SECONDS", 3600),
    },
    "destruction-runs-resume": {
        "task": "destruction.tasks.destruction_runs_resume",
        "schedule": env_int("PHM_PROGRAMME_CHECK_SECONDS", 3600),
    },
    "national-opt-outs-purge-expired": {
        "task": "consent.tasks.national_opt_out_checks_purge_expired",
        "schedule": env_int("PHM_NATIONAL_OPT_OUT_PURGE_SECONDS", 3600),
    },
    # Checks sent over MESH: send what is due, import the replies, flag the overdue.
    **(
        {
            "national-opt-outs-mesh-exchange": {
                "task": "consent.tasks.national_checks_mesh_exchange",
                "schedule": PHM_MESH_POLL_SECONDS,
            }
        }
        if PHM_MESH_URL
        else {}
    ),
    # Whatever the broker, what a lost message or a dead worker left unfinished: queued
    # jobs and chunks no live worker holds are sent again, cancelled jobs no worker stops
    # are ended, jobs whose chord's callback never came are published. Everything is
    # claimed with conditional updates, so a second message is harmless.
    "jobs-recover": {
        "task": "datasets.tasks.jobs_recover",
        "schedule": PHM_JOB_RESEND_SECONDS,
    },
    # Uploads kept (encrypted) for a person to correct their column mapping last an hour.
    "held-uploads-sweep": {
        "task": "datasets.tasks.held_uploads_sweep",
        "schedule": env_int("PHM_HELD_UPLOAD_SWEEP_SECONDS", 600),
    },
    # Every approved flow's assurance (DPIA, agreement, DSPT, ICO registration): suspend
    # those that lapsed, remind 90 and 30 days before. `manage.py check_assurance` at once.
    "assurance-watch": {
        "task": "governance.tasks.assurance_watch",
        "schedule": env_int("PHM_ASSURANCE_CHECK_SECONDS", 24 * 3600),
    },
    # A signed checkpoint of the audit chain, outside the database (also after each destruction).
    "audit-checkpoint": {
        "task": "phm_portal.tasks.audit_checkpoint",
        "schedule": env_int("PHM_AUDIT_CHECKPOINT_SECONDS", 24 * 3600),
    },
}

# --- Datasets ------------------------------------------------------------------
PHM_UPLOAD_MAX_BYTES = env_int("PHM_UPLOAD_MAX_BYTES", 4 * 1024**3)
PHM_JOB_CHUNK_BYTES = env_int("PHM_JOB_CHUNK_BYTES", 64 * 1024**2)
# A chunk's worker renews its lease while it works; a chunk whose lease expired (its
# worker died), or pending and sent this long ago unclaimed, is sent again by beat's
# jobs-recover, every PHM_JOB_RESEND_SECONDS.
PHM_JOB_LEASE_SECONDS = env_int("PHM_JOB_LEASE_SECONDS", 120)
# A queued job whose start message was sent this long ago without a worker claiming it
# is sent again (the broker may have lost it); one never sent is sent at the next look.
PHM_JOB_RESEND_AFTER_SECONDS = env_int("PHM_JOB_RESEND_AFTER_SECONDS", 600)
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "tmp")
(VAR_DIR / "tmp").mkdir(exist_ok=True)

# --- Destruction -----------------------------------------------------------------
# The portal's signing key and certificate (PKCS#12). `python manage.py signing_key init`
# makes them; the embedded demo makes them on first need. The file's password is
# PHM_SIGNING_P12_PASSWORD (or _FILE), or else one derived from PHM_KEY_ENCRYPTION_KEY.
PHM_SIGNING_P12_FILE = Path(
    env_str("PHM_SIGNING_P12_FILE") or VAR_DIR / "signing" / "portal-signing.p12"
)
PHM_SIGNING_P12_PASSWORD = env_secret("PHM_SIGNING_P12_PASSWORD")
PHM_SIGNING_KEY_ON_FIRST_NEED = DEMO_MODE
# A destruction step whose worker stops renewing its lease this long is taken over.
PHM_DESTRUCTION_LEASE_SECONDS = env_int("PHM_DESTRUCTION_LEASE_SECONDS", 300)
# CSU admins are reminded of an ended programme awaiting destruction this often.
PHM_DESTRUCTION_REMINDER_DAYS = env_int("PHM_DESTRUCTION_REMINDER_DAYS", 7)
# The largest PDF the verify page and API accept.
PHM_CERTIFICATE_MAX_BYTES = env_int("PHM_CERTIFICATE_MAX_BYTES", 10 * 1024 * 1024)
# An uploaded PDF is read in a child process with these limits (wall-clock and CPU seconds,
# megabytes of address space); a portal certificate needs well under a second and 128 MB.
PHM_CERTIFICATE_CHECK_SECONDS = env_int("PHM_CERTIFICATE_CHECK_SECONDS", 5)
PHM_CERTIFICATE_CHECK_MEMORY_MB = env_int("PHM_CERTIFICATE_CHECK_MEMORY_MB", 256)

# --- Audit log -------------------------------------------------------------------------
# Signed checkpoints of the audit chain, one JSON file each, outside the database: point
# this at write-once storage (object lock, WORM mount) that the database's owner cannot
# rewrite.
PHM_AUDIT_CHECKPOINT_DIR = Path(
    env_str("PHM_AUDIT_CHECKPOINT_DIR") or VAR_DIR / "audit-checkpoints"
)

# --- Uploads -------------------------------------------------------------------------
# Every upload is held in memory only, never written to disk in clear (a Type 1 or national
# file holds NHS numbers); extracts alone are encrypted as they stream in (datasets/uploads.py
# sets its own handler). A request whose files together pass this many bytes is a 413. The
# default fits the largest request accepted: a national check's two files at their limit.
PHM_MEMORY_UPLOAD_MAX_BYTES = env_int(
    "PHM_MEMORY_UPLOAD_MAX_BYTES", 2 * max(PHM_OPT_OUT_FILE_MAX_BYTES, PHM_CERTIFICATE_MAX_BYTES)
)
if PHM_MEMORY_UPLOAD_MAX_BYTES < 1:
    raise ImproperlyConfigured("PHM_MEMORY_UPLOAD_MAX_BYTES must be at least 1.")
FILE_UPLOAD_HANDLERS = ["phm_portal.lib.upload_handlers.MemoryOnlyUploadHandler"]


# --- The portal's public address ---------------------------------------------------
# Certificates and e-mails, written with no request at hand, give full addresses (the
# /verify/ page) under this one. Default: the demo's http://127.0.0.1:8000, else https://
# and the first host name of ALLOWED_HOSTS.
def _public_url() -> str:
    url = env_str("PHM_PUBLIC_URL")
    if url is None:
        if LOCAL_HTTP:
            return "http://127.0.0.1:8000"
        host = next((h for h in ALLOWED_HOSTS if not h.startswith((".", "*"))), None)
        if host is None:
            raise ImproperlyConfigured(
                "PHM_PUBLIC_URL is not set and ALLOWED_HOSTS names no single host: set it to "
                "the portal's address, e.g. https://phm.example.nhs.uk"
            )
        return f"https://{host}"
    if not url.startswith(("https://", "http://")):
        raise ImproperlyConfigured(
            f"PHM_PUBLIC_URL must be the portal's address, e.g. https://phm.example.nhs.uk; "
            f"got {url!r}"
        )
    return url.rstrip("/")


PHM_PUBLIC_URL = _public_url()

# --- Email (certificates to controllers' DPOs, reminders to CSU admins) -----------
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "phm-portal@localhost"
EMAIL_HOST = env_str("EMAIL_HOST") or ""
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
elif DEMO_MODE:
    # The demo sends nothing: each message is written as a file under var/mail/.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
# Otherwise Django's default: SMTP on localhost port 25 (a local mail relay).

# --- Logging ------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    # The beat's periodic tasks run every minute or hour: their routine lines ("Sending
    # due task", task received, task succeeded) are INFO and would fill the log; warnings
    # and failures still show. PHM_CELERY_ROUTINE_LOG_LEVEL=INFO brings them back.
    "loggers": {
        name: {"level": env_str("PHM_CELERY_ROUTINE_LOG_LEVEL") or "WARNING"}
        for name in ("celery.beat", "celery.app.trace", "celery.worker.strategy")
    },
}
