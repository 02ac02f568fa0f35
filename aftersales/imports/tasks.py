"""Running an uploaded import in the background.

The page (and the API with ``?background=true``) records a queued job (``import_queue``) and
calls ``dispatch``: once the transaction that recorded the job commits, ``start`` hands it
to a Celery worker when a broker is configured (``CELERY_BROKER_URL``), or — the embedded
default, with no broker — to a daemon thread of the web process. Either way ``import_process``
runs ``services.import_execute``, which updates the job after every batch; the page polls it.
The job runs in the uploader's language, so that its row errors read as the page would say them.
"""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import connections, transaction
from django.utils import translation

from . import services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def import_process(job_id: int, language: str | None = None) -> None:
    with translation.override(language or settings.LANGUAGE_CODE):
        services.import_execute(job_id)


def dispatch(job_id: int, *, language: str | None = None) -> None:
    """Start the job once the current transaction commits (at once outside a transaction), in
    ``language`` (default: the active one)."""
    language = language or translation.get_language()
    transaction.on_commit(lambda: start(job_id, language))


def start(job_id: int, language: str | None = None) -> None:
    """Hand the job to a worker. Tests replace this to run the job where they want it."""
    if settings.CELERY_BROKER_URL:
        import_process.delay(job_id, language)
    else:
        threading.Thread(target=run_in_thread, args=(job_id, language), name=f"import-{job_id}",
                         daemon=True).start()


def run_in_thread(job_id: int, language: str | None = None) -> None:
    try:
        import_process(job_id, language)
    except Exception:  # import_execute records what it can; a thread has nobody else to tell
        logger.exception("import job %s failed in its thread", job_id)
    finally:
        connections.close_all()  # this thread's connections


@shared_task(ignore_result=True)
def import_sweep_stale_task() -> int:
    return services.import_sweep_stale()
