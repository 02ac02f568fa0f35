from celery import shared_task


@shared_task(name="aftersales.dispatch.tasks.auto_dispatch_task", ignore_result=True)
def auto_dispatch_task(order_id: int) -> None:
    from .services import auto_dispatch

    auto_dispatch(order_id)


@shared_task(name="aftersales.dispatch.tasks.appointment_reminders_task", ignore_result=True)
def appointment_reminders_task() -> None:
    from .services import appointment_reminders

    appointment_reminders()
