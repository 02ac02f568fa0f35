"""Django settings: everything that differs between machines comes from the environment.

DATABASE_URL      default sqlite:///var/aftersales.sqlite3 (embedded); postgres://… in production/CI
SECRET_KEY        required when DEBUG is off
DEBUG             "1" for development (make run sets it)
ALLOWED_HOSTS     comma-separated
CELERY_BROKER_URL e.g. redis://127.0.0.1:6379/0; unset → tasks run in-process
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AFTERSALES_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = os.environ.get("DEBUG", "0") == "1"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or os.environ.get("AFTERSALES_INSECURE_DEV_KEY") == "1":
        SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
    else:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "aftersales.core",
    "aftersales.records",
    "aftersales.org",
    "aftersales.customers",
    "aftersales.catalog",
    "aftersales.imports",
    "aftersales.notifications",
    "aftersales.tickets",
    "aftersales.parts",
    "aftersales.assets",
    "aftersales.dispatch",
    "aftersales.feedback",
    "aftersales.charges",
    "aftersales.quality",
    "aftersales.staff",
    "aftersales.web",
    "aftersales.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aftersales.urls"
WSGI_APPLICATION = "aftersales.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "aftersales.web.context.principal",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'aftersales.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and the in-process sweeper share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "aftersales" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "audit-anchor": {"task": "aftersales.records.tasks.audit_anchor_task", "schedule": 60.0},
    "import-sweep-stale": {"task": "aftersales.imports.tasks.import_sweep_stale_task", "schedule": 120.0},
    "sla-sweep": {"task": "aftersales.tickets.tasks.sla_sweep_task", "schedule": 60.0},
    "callback-open-missing": {"task": "aftersales.feedback.tasks.callback_open_missing_task", "schedule": 300.0},
    "dispatch-reminders": {"task": "aftersales.dispatch.tasks.appointment_reminders_task", "schedule": 300.0},
    "assets-sweep": {"task": "aftersales.assets.tasks.assets_sweep_task", "schedule": 3600.0},
    "parts-stock-alerts": {"task": "aftersales.parts.tasks.stock_alerts_task", "schedule": 900.0},
    "quality-refresh": {"task": "aftersales.quality.tasks.quality_refresh_task", "schedule": 300.0},
    "quality-actions-overdue": {"task": "aftersales.quality.tasks.actions_overdue_task", "schedule": 3600.0},
    "quality-reports": {"task": "aftersales.quality.tasks.scheduled_reports_task", "schedule": 3600.0},
    "staff-reminders": {"task": "aftersales.staff.tasks.staff_reminders_task", "schedule": 3600.0},
}

# Notifications: the channel class per kind of recipient. The default keeps every message in
# the outbox (shown in the UI) and sends nothing; see aftersales/notifications/channels.py.
_OUTBOX = "aftersales.notifications.channels.Outbox"
NOTIFY_CHANNELS = {
    "sms": os.environ.get("NOTIFY_SMS_CHANNEL", _OUTBOX),
    "staff": os.environ.get("NOTIFY_STAFF_CHANNEL", _OUTBOX),
}
SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN", "")
NOTIFY_WEBHOOK_URL = os.environ.get("NOTIFY_WEBHOOK_URL", "")
SURVEY_TTL_DAYS = int(os.environ.get("SURVEY_TTL_DAYS", "7"))  # how long a survey link stays valid
# The address customers open survey links at (the links in the SMS).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000")

# Charges (R-WAR-2): the company on receipts, the font embedded in them (found among the
# system's CJK fonts when unset), parts without a price of their own sold at cost × markup,
# how long a quote link stays valid, and the internal costs of a visit for the service cost.
COMPANY_NAME = os.environ.get("COMPANY_NAME", "售后服务中心")
RECEIPT_FONT_PATH = os.environ.get("RECEIPT_FONT_PATH", "")
PART_PRICE_MARKUP = float(os.environ.get("PART_PRICE_MARKUP", "1.5"))
QUOTE_LINK_TTL_HOURS = int(os.environ.get("QUOTE_LINK_TTL_HOURS", "72"))
TRAVEL_COST_PER_VISIT = float(os.environ.get("TRAVEL_COST_PER_VISIT", "30"))
LABOUR_COST_PER_VISIT = float(os.environ.get("LABOUR_COST_PER_VISIT", "40"))
# Substitute appliances (R-WAR-3): a repair open longer than this many days qualifies for a
# loaner (each outlet or centre may set its own), and the default length of a loan.
LOANER_AFTER_DAYS = int(os.environ.get("LOANER_AFTER_DAYS", "3"))
LOANER_LOAN_DAYS = int(os.environ.get("LOANER_LOAN_DAYS", "14"))

# How long audit anchoring waits before it seals an entry: longer than any write transaction.
AUDIT_ANCHOR_GRACE_SECONDS = int(os.environ.get("AUDIT_ANCHOR_GRACE_SECONDS", "120"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
