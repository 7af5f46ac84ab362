"""The only settings module. Every value comes from the environment, with defaults that let a fresh
checkout run on SQLite with a serverless broker and the local Azure emulator.

Helpers fail loudly (ImproperlyConfigured) on a malformed value instead of guessing.
"""
from __future__ import annotations

import os
from datetime import timedelta

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dashboard.localstate import BASE_DIR, var_dir

VAR_DIR = var_dir()  # its folders and the development SECRET_KEY are made by dashboard.localstate.prepare()


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "workers",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # JSON for every /api/ error, and a 503 (not a traceback) when the database is down.
    "dashboard.middleware.ApiJsonErrorsMiddleware",
    "dashboard.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dashboard.middleware.ContentSecurityPolicyMiddleware",
    # Last: turns a lockout raised by the login backend into the lockout page (django-axes).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
            ],
        },
    },
]

# --- Database: SQLite by default, PostgreSQL (or anything dj-database-url knows) via DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # The pages' aggregates are short OLTP-sized queries; PostgreSQL's JIT costs ~20 ms each and
        # gains nothing here.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(VAR_DIR / "db.sqlite3")),
            "OPTIONS": {
                # WAL lets the web server read while the Celery worker writes; IMMEDIATE avoids
                # "database is locked" upgrades from read to write transactions.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Job has a covering index (INCLUDE columns) for PostgreSQL; SQLite builds it without them, as intended.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Redis: broker and cache in production. Without it: kombu's filesystem transport, local cache.
REDIS_URL = env_str("REDIS_URL")
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # A cache error is a miss, logged once: pages then compute from the database (dashboard/resilient_cache.py).
    CACHES = {"default": {
        "BACKEND": "dashboard.resilient_cache.ResilientRedisCache", "LOCATION": REDIS_URL,
        "OPTIONS": {"DOWN_RETRY_SECONDS": env_int("CACHE_DOWN_RETRY_SECONDS", 5, minimum=0)},
    }}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "dashboard.broker_fs:Transport"  # writes each message whole (see there)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery-results'}"
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: idempotent tasks, acked after they finish, one at a time per process.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120, minimum=5)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 180, minimum=10)
CELERY_TASK_IGNORE_RESULT = True
# Separate queues let a bench or a second deployment share one broker without stealing tasks.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Poll intervals (seconds). Beat entries expire after one interval so a backlog of stale polls
# is dropped instead of replayed.
POLL_WORKERS_SECONDS = env_int("POLL_WORKERS_SECONDS", 30, minimum=5)
POLL_JOBS_SECONDS = env_int("POLL_JOBS_SECONDS", 60, minimum=5)
POLL_LOGS_SECONDS = env_int("POLL_LOGS_SECONDS", 60, minimum=5)
# Machine state of V2 workers from ARM (Arc status, VM power state, Hybrid Worker extension): slow.
POLL_MACHINES_SECONDS = env_int("POLL_MACHINES_SECONDS", 300, minimum=30)
# Azure Monitor's HybridWorkerPing metric, one call per account split by worker (workers.fleet.ping).
POLL_PING_SECONDS = env_int("POLL_PING_SECONDS", 60, minimum=30)
ROLLUP_SECONDS = env_int("ROLLUP_SECONDS", 300, minimum=30)
# Status refresh (workers.fleet.tasks.refresh_statuses) also runs after every worker/log poll.
STATUS_REFRESH_SECONDS = env_int("STATUS_REFRESH_SECONDS", 15, minimum=1)
# Late data arrives for minutes (Log Analytics ingestion 20 s - 3 min); each poll re-reads this much.
POLL_OVERLAP_SECONDS = env_int("POLL_OVERLAP_SECONDS", 600, minimum=0)
# First poll of a new account reads this much history.
POLL_BACKFILL_HOURS = env_int("POLL_BACKFILL_HOURS", 24, minimum=1)
# Retention, enforced by the rollup task: poll runs (one per group per poll) and raw one-minute
# utilization samples (pages spanning longer windows read the hourly rollup, which is kept).
POLL_RUN_RETENTION_HOURS = env_int("POLL_RUN_RETENTION_HOURS", 48, minimum=1)
UTILIZATION_RETENTION_DAYS = env_int("UTILIZATION_RETENTION_DAYS", 31, minimum=1)

# Alert outbox and sender periods (s); the outbox task also sends at once when it queued an email.
ALERT_PROCESS_SECONDS = env_int("ALERT_PROCESS_SECONDS", 5, minimum=1)
ALERT_SEND_SECONDS = env_int("ALERT_SEND_SECONDS", 10, minimum=1)


def _every(task: str, seconds: float) -> dict:
    """A beat entry that expires after one period, so a backlog of stale runs is dropped."""
    return {"task": task, "schedule": float(seconds), "options": {"expires": float(seconds)}}


CELERY_BEAT_SCHEDULE = {
    "poll-workers": _every("workers.fleet.tasks.poll_all_workers", POLL_WORKERS_SECONDS),
    "poll-jobs": _every("workers.fleet.tasks.poll_all_jobs", POLL_JOBS_SECONDS),
    "poll-logs": _every("workers.fleet.tasks.poll_all_logs", POLL_LOGS_SECONDS),
    "poll-machines": _every("workers.fleet.tasks.poll_all_machines", POLL_MACHINES_SECONDS),
    "poll-ping": _every("workers.fleet.tasks.poll_all_pings", POLL_PING_SECONDS),
    "refresh-statuses": _every("workers.fleet.tasks.refresh_statuses", STATUS_REFRESH_SECONDS),
    "rollup": _every("workers.fleet.tasks.rollup_recent", ROLLUP_SECONDS),
    "alerts-process-outbox": _every("workers.alerting.tasks.process_alert_outbox", ALERT_PROCESS_SECONDS),
    "alerts-send-pending": _every("workers.alerting.tasks.send_pending_notifications", ALERT_SEND_SECONDS),
    "alerts-reminders": _every("workers.alerting.tasks.send_alert_reminders", 60),
}
# Capacity analysis (workers.capacity.tasks): precomputed correlation findings and group capacity.
CAPACITY_REFRESH_SECONDS = env_int("CAPACITY_REFRESH_SECONDS", 600, minimum=60)
CAPACITY_TASK_SOFT_TIME_LIMIT = env_int("CAPACITY_TASK_SOFT_TIME_LIMIT", 900, minimum=30)
CAPACITY_TASK_TIME_LIMIT = env_int("CAPACITY_TASK_TIME_LIMIT", 960, minimum=60)
# Pressure thresholds (percent): a finding needs the metric's p95 above these.
CAPACITY_CPU_PRESSURE_PCT = env_int("CAPACITY_CPU_PRESSURE_PCT", 85, minimum=1, maximum=100)
CAPACITY_MEM_PRESSURE_PCT = env_int("CAPACITY_MEM_PRESSURE_PCT", 90, minimum=1, maximum=100)
# A poll whose process died (no finish past CELERY_TASK_TIME_LIMIT plus a margin) is closed as failed.
CELERY_BEAT_SCHEDULE["close-abandoned-polls"] = _every("workers.fleet.tasks.close_abandoned_polls", 60)
CELERY_BEAT_SCHEDULE["capacity-refresh"] = _every("workers.capacity.tasks.refresh_capacity", CAPACITY_REFRESH_SECONDS)
# workers.latency.tasks.rollup_job_latency (on demand; the "rollup" beat entry's rollup_recent already
# calls rollup_jobs every ROLLUP_SECONDS) recomputes this many hours back, plus older hours whose jobs changed.
JOB_ROLLUP_LOOKBACK_HOURS = env_int("JOB_ROLLUP_LOOKBACK_HOURS", 3, minimum=1)

# Beat scheduler. With Redis, run two or more beats (any hosts): celery-redbeat keeps the schedule and a
# lock in Redis, one beat dispatches and a standby takes over within the lock timeout after it dies.
# Without Redis (the filesystem-broker demo) Celery's default scheduler: run exactly one beat.
BEAT_LOCK_TIMEOUT_SECONDS = env_int("BEAT_LOCK_TIMEOUT_SECONDS", 30, minimum=5)
if REDIS_URL:
    CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
    CELERY_REDBEAT_REDIS_URL = REDIS_URL
    CELERY_REDBEAT_KEY_PREFIX = f"redbeat:{CELERY_TASK_DEFAULT_QUEUE}:"
    CELERY_REDBEAT_LOCK_TIMEOUT = BEAT_LOCK_TIMEOUT_SECONDS
    # The active beat renews the lock every tick, a standby retries every tick: 5 ticks per timeout.
    CELERY_BEAT_MAX_LOOP_INTERVAL = max(1, BEAT_LOCK_TIMEOUT_SECONDS // 5)

# --- Health thresholds (seconds). Automation's lastSeenDateTime refreshes as the worker polls
# (every 30 s); Heartbeat rows come every 60 s plus 20 s - 3 min of ingestion latency.
LASTSEEN_LATE_SECONDS = env_int("LASTSEEN_LATE_SECONDS", 90, minimum=10)
LASTSEEN_OFFLINE_SECONDS = env_int("LASTSEEN_OFFLINE_SECONDS", 180, minimum=10)
# A heartbeat is normally at most 60 s + 3 min old when read, hence late at 240 s. Offline (the alert
# grace) at 300 s: a worker is down only when Automation is silent too, so this need not cover the
# worst ingestion delay, and a stopped agent is reported in about 5 min, not Azure's 6-9.
HEARTBEAT_LATE_SECONDS = env_int("HEARTBEAT_LATE_SECONDS", 240, minimum=30)
HEARTBEAT_OFFLINE_SECONDS = env_int("HEARTBEAT_OFFLINE_SECONDS", 300, minimum=30)
# HybridWorkerPing: one-minute buckets landing 1-3 min after they end, so a healthy worker's newest
# visible bucket starts up to 4-5 min ago: late at 300 s, offline at 420 s (workers.rules.signals).
PING_LATE_SECONDS = env_int("PING_LATE_SECONDS", 300, minimum=60)
PING_OFFLINE_SECONDS = env_int("PING_OFFLINE_SECONDS", 420, minimum=60)
# A poll older than this many intervals makes the pages say the data is stale.
STALE_AFTER_INTERVALS = env_int("STALE_AFTER_INTERVALS", 3, minimum=1)
# /healthz: 503 when the newest successful poll is older than this (0 = STALE_AFTER_INTERVALS x the
# slowest poll interval), or when the broker does not answer within the timeout.
HEALTHZ_MAX_POLL_AGE_SECONDS = env_int("HEALTHZ_MAX_POLL_AGE_SECONDS", 0, minimum=0)
HEALTHZ_BROKER_TIMEOUT_SECONDS = env_int("HEALTHZ_BROKER_TIMEOUT_SECONDS", 2, minimum=1)

# --- Azure. azure-identity reads AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and
# AZURE_AUTHORITY_HOST itself; these are ours (an account can also be added in the admin).
HRW_SUBSCRIPTION_ID = env_str("HRW_SUBSCRIPTION_ID")
HRW_RESOURCE_GROUP = env_str("HRW_RESOURCE_GROUP")
HRW_AUTOMATION_ACCOUNT = env_str("HRW_AUTOMATION_ACCOUNT")
HRW_WORKSPACE_ID = env_str("HRW_WORKSPACE_ID")
HRW_ARM_ENDPOINT = env_str("HRW_ARM_ENDPOINT", "https://management.azure.com")
HRW_LOGS_ENDPOINT = env_str("HRW_LOGS_ENDPOINT", "https://api.loganalytics.io")
HRW_LOGS_AUDIENCE = env_str("HRW_LOGS_AUDIENCE", "https://api.loganalytics.io")
HRW_CA_BUNDLE = env_str("HRW_CA_BUNDLE")
AZURE_CONNECT_TIMEOUT = env_int("AZURE_CONNECT_TIMEOUT", 10, minimum=1)
AZURE_READ_TIMEOUT = env_int("AZURE_READ_TIMEOUT", 60, minimum=1)
AZURE_RETRY_TOTAL = env_int("AZURE_RETRY_TOTAL", 2, minimum=0)
# ARM read budget shared by every Celery worker (workers/azure/throttle.py; Redis when REDIS_URL is set):
# Azure's published token bucket per subscription and principal is 250 reads, refilled at 25 per second.
ARM_THROTTLE_ENABLED = env_bool("ARM_THROTTLE_ENABLED", True)
ARM_READS_BUCKET = env_int("ARM_READS_BUCKET", 250, minimum=1)
ARM_READS_REFILL_PER_SECOND = env_float("ARM_READS_REFILL_PER_SECOND", 25.0, minimum=0.1, maximum=10_000.0)
ARM_THROTTLE_MAX_WAIT_SECONDS = env_int("ARM_THROTTLE_MAX_WAIT_SECONDS", 10, minimum=0)

# --- Email. With EMAIL_HOST set, alerts go over SMTP; otherwise they are written to var/mail/.
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = str(VAR_DIR / "mail")  # used by the file backend only
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "hrw-monitor@localhost")
ALERT_RECIPIENTS = env_list("ALERT_RECIPIENTS")
# Alerting (workers/services/alerts.py). Group wait: an alert waits up to this long for other
# members of its group whose signals went silent at about the same time (their deadline falls within
# it), so a site going dark makes one email; a lone failure is sent at once. Flapping:
# FLAP_TRANSITIONS changes in and out of offline within FLAP_WINDOW_MINUTES; alerts stay held until
# FLAP_STABLE_MINUTES without a change.
ALERT_GROUP_WAIT_SECONDS = env_int("ALERT_GROUP_WAIT_SECONDS", 60, minimum=0, maximum=600)
# A rollup whose members are at least this share of their group (and at least 2) is reported as a
# possible site or network outage: members listed once, the advice given once.
ALERT_SITE_OUTAGE_SHARE = env_float("ALERT_SITE_OUTAGE_SHARE", 0.8, minimum=0.05, maximum=1.0)
ALERT_REMINDER_HOURS = env_int("ALERT_REMINDER_HOURS", 4, minimum=1)
FLAP_TRANSITIONS = env_int("FLAP_TRANSITIONS", 4, minimum=2)
FLAP_WINDOW_MINUTES = env_int("FLAP_WINDOW_MINUTES", 30, minimum=1)
FLAP_STABLE_MINUTES = env_int("FLAP_STABLE_MINUTES", 15, minimum=1)
# Every worker of an account (spread over at least this many groups) offline at once = blind.
ALERT_BLIND_MIN_GROUPS = env_int("ALERT_BLIND_MIN_GROUPS", 2, minimum=1)
# A blind condition pages only once it has held this long (dated from its start), so one failed poll,
# retried within seconds or followed by a good one, never pages. Default: two worker-poll intervals.
ALERT_BLIND_GRACE_SECONDS = env_int("ALERT_BLIND_GRACE_SECONDS", 2 * POLL_WORKERS_SECONDS, minimum=0)
ALERT_MAX_ATTEMPTS = env_int("ALERT_MAX_ATTEMPTS", 8, minimum=1)
ALERT_RETRY_BASE_SECONDS = env_int("ALERT_RETRY_BASE_SECONDS", 30, minimum=1)
# Pressure alerts: CPU >= CAPACITY_CPU_PRESSURE_PCT or memory >= CAPACITY_MEM_PRESSURE_PCT in at least
# ALERT_PRESSURE_SHARE of the one-minute samples of the last ALERT_PRESSURE_MINUTES (and at least
# ALERT_PRESSURE_MIN_SAMPLES of them); it resolves below ALERT_PRESSURE_CLEAR_SHARE (default: half).
ALERT_PRESSURE_MINUTES = env_int("ALERT_PRESSURE_MINUTES", 15, minimum=2, maximum=240)
ALERT_PRESSURE_MIN_SAMPLES = env_int("ALERT_PRESSURE_MIN_SAMPLES", 10, minimum=1)
ALERT_PRESSURE_SHARE = env_float("ALERT_PRESSURE_SHARE", 0.8, minimum=0.05, maximum=1.0)
ALERT_PRESSURE_CLEAR_SHARE = env_float("ALERT_PRESSURE_CLEAR_SHARE", ALERT_PRESSURE_SHARE / 2, minimum=0.0, maximum=ALERT_PRESSURE_SHARE)
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

# --- Auth, i18n, static.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
# Hashed, brotli/gzip-compressed names after collectstatic (served immutable); plain names without it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "dashboard.static_storage.StaticStorage"},
}
# The unhashed names are served from the source folders (finders), so collectstatic keeps only hashed copies.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
# Files served at the site root: /favicon.ico.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS and login throttling (django-axes): docs/configuration.md#https-and-login-protection.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe it over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if _proxy_ssl := env_str("SECURE_PROXY_SSL_HEADER").strip():  # e.g. X-Forwarded-Proto, always set by the proxy
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl.upper().replace("-", "_"), "https")
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)  # per username and address; a success resets it
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
_client_ip = env_str("LOGIN_CLIENT_IP_HEADER").strip()  # set by a trusted proxy, e.g. X-Real-IP
LOGIN_CLIENT_IP_META = "HTTP_" + _client_ip.upper().replace("-", "_") if _client_ip else "REMOTE_ADDR"
AXES_CLIENT_IP_CALLABLE = "dashboard.auth.client_ip"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "azure": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # lockouts and repeated failures; not every login
    },
}
