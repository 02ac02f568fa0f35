from django.core.management.base import BaseCommand

from aftersales.records.audit import audit_anchor


class Command(BaseCommand):
    help = "Seal the heads of the audit chains changed since the last anchor (run periodically)."

    def add_arguments(self, parser):
        parser.add_argument("--grace", type=int, default=None, help="seconds to wait before sealing")

    def handle(self, *args, grace=None, **opts):
        a = audit_anchor(grace_seconds=grace)
        if a is None:
            self.stdout.write("nothing new to anchor")
        else:
            self.stdout.write(f"anchor {a.pk}: {len(a.heads)} chain heads sealed up to {a.window_end:%Y-%m-%d %H:%M:%S}")
