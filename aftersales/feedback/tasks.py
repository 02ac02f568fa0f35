from celery import shared_task


@shared_task(name="aftersales.feedback.tasks.callback_open_missing_task", ignore_result=True)
def callback_open_missing_task() -> None:
    """Open the call-back of completed orders whose round was never opened (a lost on_commit)."""
    from .services import callback_open_missing

    callback_open_missing()
