"""Celery application.

In production the worker and beat run against Redis (``CELERY_BROKER_URL``). The embedded
default (no broker configured) runs every task eagerly in-process, so ``make run`` needs
nothing but Python; the periodic jobs are then driven by ``manage.py serve_embedded``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")

app = Celery("aftersales")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
