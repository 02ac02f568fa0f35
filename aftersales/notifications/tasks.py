from celery import shared_task


@shared_task(name="aftersales.notifications.tasks.deliver_task", ignore_result=True)
def deliver_task(message_id: int) -> None:
    from .services import deliver

    deliver(message_id)
