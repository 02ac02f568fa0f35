from celery import shared_task

from .audit import audit_anchor


@shared_task
def audit_anchor_task():
    a = audit_anchor()
    return a.pk if a else None
