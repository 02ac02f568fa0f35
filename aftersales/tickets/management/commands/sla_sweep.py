import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from aftersales.tickets.sweep import sla_sweep


class Command(BaseCommand):
    help = ("Run the SLA sweep once: mark orders at risk, flag missed deadlines, escalate and tell the "
            "managers (runs every minute under Celery beat or `manage.py serve`).")

    def add_arguments(self, parser):
        parser.add_argument("--at", default=None,
                            help="sweep as of this moment (ISO 8601, local time if no offset), default now")
        parser.add_argument("--limit", type=int, default=None, help="escalate at most this many orders")

    def handle(self, *args, at=None, limit=None, **opts):
        now = None
        if at:
            try:
                now = dt.datetime.fromisoformat(at)
            except ValueError as exc:
                raise CommandError(f"--at: not an ISO 8601 date-time: {at!r}") from exc
            if timezone.is_naive(now):
                now = timezone.make_aware(now)
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        r = sla_sweep(now, limit=limit)
        self.stdout.write(f"SLA sweep: {r.at_risk} at risk, {r.breached} breached, {r.escalated} escalated")
