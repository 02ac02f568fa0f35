"""Single use under concurrency, on PostgreSQL with real concurrent connections."""


import pytest
from django.db import connection

from aftersales.conftest import race
from aftersales.core.errors import Conflict
from aftersales.feedback import services
from aftersales.feedback.models import Survey, TaskStatus
from aftersales.records.audit import audit_verify
from aftersales.tickets.models import OrderEvent, WorkOrder

from .conftest import SCORES

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(fns):
    return race(len(fns), lambda i: fns[i]())


def test_double_submit_of_one_link_exactly_one_accepted(world, completed):
    assert connection.vendor == "postgresql"
    r = completed()
    results = _race([lambda: services.survey_submit(r.token, **SCORES, resolved=True, comment="A"),
                     lambda: services.survey_submit(r.token, **{**SCORES, "result": 1}, resolved=False,
                                                    comment="B")])
    oks = [v for kind, v in results if kind == "ok"]
    errs = [v for kind, v in results if kind == "err"]
    assert len(oks) == 1 and len(errs) == 1, results
    assert isinstance(errs[0], services.Gone) and errs[0].status == 410
    s = Survey.objects.get(pk=r.survey.pk)
    assert s.answered_at is not None and s.comment in ("A", "B")
    order = WorkOrder.objects.get(pk=r.order.pk)
    assert order.status == ("closed" if s.comment == "A" else "reopened")
    assert WorkOrder.objects.filter(parent=order).count() == (0 if s.comment == "A" else 1)
    assert OrderEvent.objects.filter(order=order, action="survey").count() == 1
    seqs = list(OrderEvent.objects.filter(order=order).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert audit_verify().ok


def test_link_and_phone_at_once_one_answer_per_round(world, completed):
    r = completed()
    results = _race([lambda: services.survey_submit(r.token, **SCORES, resolved=True),
                     lambda: services.callback_record(user=world.pudong_agent, task_id=r.task.pk, reached=True,
                                                      **SCORES, resolved=True)])
    kinds = sorted(kind for kind, _v in results)
    assert kinds == ["err", "ok"], results
    err = next(v for kind, v in results if kind == "err")
    assert isinstance(err, services.Gone | Conflict)
    assert Survey.objects.filter(task=r.task, answered_at__isnull=False).count() == 1
    r.refresh()
    assert r.task.status == TaskStatus.DONE and r.order.status == "closed"
    assert OrderEvent.objects.filter(order=r.order, action="close").count() == 1
    assert audit_verify().ok
