from celery import shared_task


@shared_task(name="aftersales.assets.tasks.assets_sweep_task", ignore_result=True)
def assets_sweep_task() -> None:
    """Tell holders and managers about instruments falling due or overdue, overdue loans and
    repair orders that have come to qualify for a loaner (each once)."""
    from .services import assets_sweep

    assets_sweep()
