from celery import shared_task


@shared_task(name="aftersales.quality.tasks.quality_refresh_task", ignore_result=True)
def quality_refresh_task() -> None:
    """Bring the indicator facts and pre-aggregates up to date with the orders that changed."""
    from .facts import refresh

    refresh()


@shared_task(name="aftersales.quality.tasks.actions_overdue_task", ignore_result=True)
def actions_overdue_task() -> None:
    """Tell owners and managers about improvement actions past their due date (once each)."""
    from .services import actions_overdue_sweep

    actions_overdue_sweep()


@shared_task(name="aftersales.quality.tasks.scheduled_reports_task", ignore_result=True)
def scheduled_reports_task() -> None:
    """Build the monthly, quarterly and annual reports of periods that have just ended."""
    from .reports import build_scheduled

    build_scheduled()


@shared_task(name="aftersales.quality.tasks.report_build_task", ignore_result=True)
def report_build_task(report_id: int) -> None:
    """Build one requested report (PDF + Excel), with progress on the report row."""
    from .reports import build

    build(report_id)
