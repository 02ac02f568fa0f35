"""Settings for the test suite: the real settings, a throw-away key and a fast hasher."""

import os

os.environ.setdefault("AFTERSALES_INSECURE_DEV_KEY", "1")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
