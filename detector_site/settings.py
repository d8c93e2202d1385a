"""Settings for the deepfake-detection site.

Everything that differs between a laptop and production comes from the environment; the defaults
are the embedded ones that ``scripts/start`` uses (SQLite under ``var/``, Redis on localhost).
README.md documents every variable read here.
"""

import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    """A yes/no variable. Anything but the usual words is an error: HTTPS=ture must not quietly turn
    secure cookies and HSTS off."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in TRUE_WORDS | FALSE_WORDS:
        raise ImproperlyConfigured(
            f"{name}={os.environ[name]!r} is not a yes/no value; use one of "
            f"{', '.join(sorted(TRUE_WORDS))} or {', '.join(sorted(FALSE_WORDS))}."
        )
    return value in TRUE_WORDS


def _env_number(name: str, default: T, kind: Callable[[str], T]) -> T:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in env_str(name, default).split(",") if part.strip()]


# Runtime state (SQLite file, generated secret key, Redis data, beat schedule) lives here.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else a random key kept in var/ so sessions survive restarts."""
    from_env = os.environ.get("SECRET_KEY", "").strip()
    if from_env:
        return from_env
    key_file = VAR_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(64)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "detection",
    # The REST API (issue 13): its own app so its tables and migrations stay apart from detection's.
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "detection.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: the CSRF check parses the whole body, this refuses oversize and anonymous uploads first.
    "detection.uploads.UploadGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "detection.site_middleware.ContentSecurityPolicyMiddleware",
    "detection.site_middleware.MethodNotAllowedPageMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "detector_site.urls"

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
                "detection.context_processors.upload_limits",
            ],
        },
    },
]

WSGI_APPLICATION = "detector_site.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write the same file: WAL lets readers run beside a writer, and
    # IMMEDIATE transactions plus a busy timeout turn lock conflicts into short waits, not errors.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Login throttling (django-axes) -------------------------------------------------------------------
# After LOGIN_FAILURE_LIMIT failed logins for one username from one address, that pair is locked out for
# LOGIN_LOCKOUT_MINUTES (the attempts and lockouts are listed in the admin under "Axes").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a proxy the client's address is in X-Forwarded-For; trusting it is the same decision as for
# X-Forwarded-Proto.
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if env_bool("TRUST_X_FORWARDED_PROTO", False) else ["REMOTE_ADDR"]
)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "upload"
LOGOUT_REDIRECT_URL = "home"

# Password-reset mail goes to the console (the server log) unless an SMTP server is configured.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Deepfake detector <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start when it is missing
except OSError:
    pass
# Serving straight from the finders means no collectstatic step is needed for the embedded setup;
# the Docker image still runs collectstatic so production serves compressed files.
WHITENOISE_USE_FINDERS = True

# Uploads and pipeline artefacts. They are private: only detection.views serves them, after an
# ownership check, so MEDIA_URL is deliberately never routed.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-served/"

# Hand private media to the web server after the ownership check, so a large video does not tie up a
# Python worker: "x-accel-redirect" (nginx: an `internal` location MEDIA_ACCEL_PREFIX aliased to
# MEDIA_ROOT) or "x-sendfile" (Apache mod_xsendfile, lighttpd). Empty: Django streams the file itself.
MEDIA_ACCEL_REDIRECT = env_str("MEDIA_ACCEL_REDIRECT", "").lower()
if MEDIA_ACCEL_REDIRECT not in {"", "x-accel-redirect", "x-sendfile"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"MEDIA_ACCEL_REDIRECT={MEDIA_ACCEL_REDIRECT!r}: use x-accel-redirect, x-sendfile or leave it empty"
    )
MEDIA_ACCEL_PREFIX = env_str("MEDIA_ACCEL_PREFIX", "/protected-media/")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Upload limits and review thresholds -----------------------------------------------------------
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 200)
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_VIDEO_SECONDS = env_int("MAX_VIDEO_SECONDS", 600)
MAX_FILES_PER_UPLOAD = env_int("MAX_FILES_PER_UPLOAD", 20)
# Files above this are streamed to a temporary file instead of being held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_FILES_PER_UPLOAD

# The admin review queue lists every finished item the model called FAKE or UNCERTAIN; the threshold and
# the uncertain band are the model card's (ml.verdict), not settings.

HISTORY_PAGE_SIZE = env_int("HISTORY_PAGE_SIZE", 20)

# Per-user abuse limits (staff are exempt): files accepted per rolling hour, and bytes of originals kept.
UPLOADS_PER_HOUR = env_int("UPLOADS_PER_HOUR", 200)
STORAGE_QUOTA_MB = env_int("STORAGE_QUOTA_MB", 5000)

# --- Jobs ------------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Job state lives in the database (Item.status); Celery's own results are never read.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "images"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A message that is delivered but not acknowledged within this many seconds (the worker died) goes back
# on the queue. It must exceed the longest a job may run (JOB_HARD_TIME_LIMIT, a system check says so):
# with the former 900 s, a job still running after 15 minutes would be handed to a second worker, and that
# copy counts an attempt (the fault tests' 8 s show it). Recovery from a dead worker does not wait for it:
# the sweep re-queues a job whose heartbeat is JOB_STALE_SECONDS old.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT", 3600),
    # How often a worker looks for such expired deliveries (kombu scans every interval * throttle s).
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 3,
}
# Sites sharing one Redis database (benchmarks.load beside a running site) keep apart by a key prefix.
if env_str("BROKER_KEY_PREFIX", ""):
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env_str("BROKER_KEY_PREFIX", "")
# The web request that enqueues must not hang when Redis is down: the item stays QUEUED and the sweep
# enqueues it again later.
CELERY_BROKER_CONNECTION_TIMEOUT = 3

# The worker touches Item.heartbeat_at this often while a job runs ...
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 10)
# ... and a RUNNING job whose heartbeat is older than this is treated as abandoned by a dead worker.
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 60)
# A QUEUED job older than this is enqueued again (covers a Redis restart that lost the message).
JOB_REQUEUE_SECONDS = env_int("JOB_REQUEUE_SECONDS", 600)
# Attempts (crashes and errors together) before a job ends FAILED.
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
JOB_RETRY_DELAY_SECONDS = env_int("JOB_RETRY_DELAY_SECONDS", 5)
JOB_SOFT_TIME_LIMIT = env_int("JOB_SOFT_TIME_LIMIT", 1800)
# After the soft limit the job has this long to record its failure before the worker kills it.
JOB_HARD_TIME_LIMIT = JOB_SOFT_TIME_LIMIT + 60
JOB_SWEEP_INTERVAL_SECONDS = env_int("JOB_SWEEP_INTERVAL_SECONDS", 60)

CELERY_TASK_ROUTES = {"detection.sweep_stale_jobs": {"queue": "images"}}
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {
        "task": "detection.sweep_stale_jobs",
        "schedule": float(JOB_SWEEP_INTERVAL_SECONDS),
        # A sweep that waited longer than its interval is superseded by the next one.
        "options": {"expires": float(JOB_SWEEP_INTERVAL_SECONDS)},
    }
}

# --- REST API (detection/api) -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token for scripts; the session too, so the docs page's "Try it out" works for a logged-in user.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "detection.api.pagination.HistoryPagination",
    "PAGE_SIZE": HISTORY_PAGE_SIZE,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "detection.api.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Deepfake detector API",
    "DESCRIPTION": "Upload images and videos for deepfake analysis, follow the jobs and fetch reports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs pages load Swagger UI and Redoc from this site's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1: a nullable nested object (an analysis's review) is oneOf [object, null], which validators agree on.
    "OAS_VERSION": "3.1.0",
}
# Webhooks: a finished analysis is POSTed to the client's URL, retried with exponential backoff.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 5)
WEBHOOK_RETRY_DELAY_SECONDS = env_int("WEBHOOK_RETRY_DELAY_SECONDS", 30)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# Off by default so a client cannot make the server call into its own private network (SSRF).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# ZIP uploads are expanded into one item per media file, within these limits.
ZIP_MAX_MEMBERS = env_int("ZIP_MAX_MEMBERS", 100)
ZIP_MAX_TOTAL_MB = env_int("ZIP_MAX_TOTAL_MB", 1024)
# Refuse members that inflate more than this (a zip bomb); media barely compresses at all.
ZIP_MAX_RATIO = env_int("ZIP_MAX_RATIO", 100)

# --- HTTPS / deployment hardening --------------------------------------------------------------------
# Set HTTPS=true when the site is reached over TLS (directly or through a proxy that sets
# X-Forwarded-Proto). It turns on secure cookies, the HTTPS redirect and HSTS; `check --deploy` is clean
# with it. Left off for the embedded http://127.0.0.1 setup, where secure cookies would break login.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# The pages read the CSRF token from the form, never from the cookie, so scripts need not see it.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Sent on every page by detection.site_middleware: only this origin, and no inline script anywhere.
# Style attributes stay allowed (the admin's thumbnails and the verdict's scale use them): no code runs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # django-axes logs every login and every reset at INFO; lockouts (WARNING) are what matter.
        "axes": {"level": "WARNING"},
    },
}
