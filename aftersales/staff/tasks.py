from celery import shared_task


@shared_task(name="aftersales.staff.tasks.staff_reminders_task", ignore_result=True)
def staff_reminders_task() -> None:
    """Remind reviewers of appraisal steps due, and managers of staff overdue for training and of
    certificates expiring within 30 days (each once)."""
    from .services_appraisal import review_reminders
    from .services_training import training_reminders

    review_reminders()
    training_reminders()
