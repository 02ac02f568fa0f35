from celery import shared_task


@shared_task(name="aftersales.tickets.tasks.sla_sweep_task", ignore_result=True)
def sla_sweep_task() -> None:
    from .sweep import sla_sweep

    sla_sweep(limit=1000)
