from django.core.management.base import BaseCommand

from aftersales.quality.facts import rebuild, refresh


class Command(BaseCommand):
    help = ("Bring the quality indicator facts and pre-aggregates up to date with the orders that changed "
            "(runs every 5 minutes under Celery beat or `manage.py serve`); --rebuild recomputes everything.")

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="recompute every fact and pre-aggregate")

    def handle(self, *args, **opts):
        if opts.get("rebuild"):
            r = rebuild(progress=self.stderr)
        else:
            r = refresh()
        if r.busy:
            self.stdout.write("quality refresh: another refresh is running; nothing done")
            return
        kind = "rebuild" if r.rebuilt else "refresh"
        self.stdout.write(f"quality {kind}: {r.orders} orders, {r.cells} cells, {r.ms} ms")
