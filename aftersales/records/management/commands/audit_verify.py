from django.core.management.base import BaseCommand, CommandError

from aftersales.records.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail: hash chains per object and the anchors that seal their heads."

    def handle(self, *args, **opts):
        r = audit_verify()
        for p in r.problems:
            self.stdout.write(self.style.ERROR(p))
        summary = f"{r.entries} entries in {r.chains} chains, {r.anchors} anchors checked"
        if not r.ok:
            raise CommandError(f"audit trail NOT intact: {len(r.problems)} problem(s); {summary}")
        self.stdout.write(self.style.SUCCESS(f"audit trail intact: {summary}"))
