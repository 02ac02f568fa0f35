from celery import shared_task


@shared_task(name="aftersales.parts.tasks.stock_alerts_task", ignore_result=True)
def stock_alerts_task() -> None:
    """Tell managers about parts at or below their reorder point, or out of stock (once each)."""
    from .services import stock_alerts_sweep

    stock_alerts_sweep()
