"""Serve the embedded installation: the development web server plus, in a background thread,
the periodic jobs of ``CELERY_BEAT_SCHEDULE`` run in-process (in production, Celery beat and
workers on Redis run the same tasks)."""

import importlib
import logging
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections

log = logging.getLogger("aftersales.periodic")


def _load(dotted: str):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def run_periodic_forever(stop: threading.Event, tick: float = 1.0) -> None:
    jobs = [(name, _load(spec["task"]), float(spec["schedule"])) for name, spec in settings.CELERY_BEAT_SCHEDULE.items()]
    due = {name: time.monotonic() for name, _t, _s in jobs}
    while not stop.is_set():
        now = time.monotonic()
        for name, task, every in jobs:
            if now >= due[name]:
                due[name] = now + every
                try:
                    close_old_connections()
                    task.run() if hasattr(task, "run") else task()
                except Exception:  # a failing job is logged and retried at its next turn
                    log.exception("periodic job %s failed", name)
                finally:
                    close_old_connections()
        stop.wait(tick)


class Command(BaseCommand):
    help = "Run the web server with the periodic jobs in-process (the embedded default)."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-periodic", action="store_true")

    def handle(self, *args, addrport, no_periodic, **opts):
        if not no_periodic:
            stop = threading.Event()
            threading.Thread(target=run_periodic_forever, args=(stop,), daemon=True, name="periodic").start()
        call_command("runserver", addrport, use_reloader=False)
