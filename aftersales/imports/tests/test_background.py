"""Uploads imported in the background: the upload only checks the file and queues the job; a
worker (Celery, or a thread of the web process in the embedded default) runs it; the page and
the API follow its progress."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from aftersales.customers.models import Customer, Unit
from aftersales.imports import services, tasks
from aftersales.imports.models import ImportJob, ImportStatus
from aftersales.org.models import RoleAssignment
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry

from .test_import import MIXED, PAST, PNG, _upload, csv_bytes

MIXED_CSV = csv_bytes([r for _c, r in MIXED])


def _post(client, content=MIXED_CSV, name="客户.csv"):
    return client.post(reverse("imports:upload"), {"file": SimpleUploadedFile(name, content),
                                                   "kind": "customers_units"})


def test_the_page_queues_the_upload_and_follows_its_progress(world, client, page_urls):
    client.force_login(world.pudong_agent)
    r = _post(client)  # the test's transaction never commits: nothing starts the job
    job = ImportJob.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("imports:job", args=[job.pk])
    assert (job.status, job.total_rows, job.processed_rows, job.ok_rows) == (ImportStatus.QUEUED, 12, 0, 0)
    assert bytes(job.source) == MIXED_CSV
    assert not Customer.objects.filter(phone="13900000001").exists()
    start = AuditEntry.objects.get(chain=f"imports.importjob:{job.pk}")
    assert (start.action, start.after["status"]) == ("import.start", "queued")

    status_url = reverse("imports:job_status", args=[job.pk])
    page = client.get(r["Location"]).text
    assert f'hx-get="{status_url}"' in page and 'hx-trigger="every 1s"' in page and "<progress" in page
    assert "排队" in page and reverse("imports:report", args=[job.pk]) not in page

    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, processed_rows=6, ok_rows=2,
                                               error_rows=4)
    part = client.get(status_url)
    assert part.status_code == 200 and "<html" not in part.text  # the card alone, swapped in by htmx
    assert 'hx-trigger="every 1s"' in part.text and 'value="6"' in part.text and "已处理 6 / 12 行（50%）" in part.text
    assert 'data-count="ok">2<' in part.text
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED, processed_rows=0, ok_rows=0,
                                               error_rows=0)

    tasks.import_process(job.pk)  # what the worker runs
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.ok_rows, job.error_rows) == (ImportStatus.DONE, 12, 4, 8)
    assert job.source is None and job.finished_at is not None
    part = client.get(status_url).text
    assert "hx-trigger" not in part and "<progress" not in part  # finished: the polling stops
    assert 'data-count="ok">4<' in part and 'data-count="error">8<' in part
    assert reverse("imports:report", args=[job.pk]) in part
    assert AuditEntry.objects.filter(chain=f"imports.importjob:{job.pk}", action="import.finish").exists()
    assert audit_verify().ok

    client.force_login(world.hangzhou_agent)
    assert client.get(status_url).status_code == 404


def test_a_refused_file_is_said_at_once_and_queues_nothing(world, client, page_urls):
    client.force_login(world.pudong_agent)
    r = _post(client, PNG, "a.png")
    assert r.status_code == 400 and "不是可识别的表格" in r.text
    assert ImportJob.objects.count() == 0


def test_upload_then_run_on_commit(world, client, page_urls, imports_inline, django_capture_on_commit_callbacks):
    client.force_login(world.pudong_agent)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _post(client)
    assert len(callbacks) == 1
    job = ImportJob.objects.get()
    assert (job.status, job.ok_rows, job.error_rows, job.customers_created) == (ImportStatus.DONE, 4, 8, 2)


def test_dispatch_waits_for_the_commit_then_uses_the_broker_or_a_thread(world, monkeypatch, settings,
                                                                         django_capture_on_commit_callbacks):
    delayed, threads = [], []
    monkeypatch.setattr(tasks.import_process, "delay", lambda *args: delayed.append(args))

    class FakeThread:
        def __init__(self, *, target, args, name, daemon):
            threads.append((target, args, name, daemon))

        def start(self):
            pass

    monkeypatch.setattr(tasks.threading, "Thread", FakeThread)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    with django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch(7)
        assert delayed == []  # not before the job is committed
    assert delayed == [(7, "zh-hans")] and threads == []
    settings.CELERY_BROKER_URL = ""
    with django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch(8, language="en")
    assert len(delayed) == 1 and threads == [(tasks.run_in_thread, (8, "en"), "import-8", True)]


def test_the_thread_closes_its_connections_even_when_the_job_fails(monkeypatch):
    closed = []

    def boom(job_id, language):
        raise RuntimeError("boom")

    monkeypatch.setattr(tasks, "import_process", boom)
    monkeypatch.setattr(tasks.connections, "close_all", lambda: closed.append(1))
    tasks.run_in_thread(3)  # logged, not raised
    assert closed == [1]


def test_the_job_runs_in_the_uploaders_language(world, client, page_urls, imports_inline, monkeypatch,
                                                django_capture_on_commit_callbacks):
    from django.utils import translation

    seen = []
    monkeypatch.setattr(services, "import_execute", lambda job_id: seen.append(translation.get_language()))
    client.force_login(world.pudong_agent)
    for accept in ("en", "zh-hans"):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("imports:upload"), {"file": SimpleUploadedFile("a.csv", MIXED_CSV),
                                                    "kind": "customers_units"}, HTTP_ACCEPT_LANGUAGE=accept)
    assert seen == ["en", "zh-hans"]


def test_a_job_runs_once(world):
    job = services.import_queue(user=world.pudong_agent, filename="a.csv", content=MIXED_CSV)
    assert services.import_execute(job.pk).ok_rows == 4
    assert services.import_execute(job.pk) is None  # delivered twice: left alone
    assert services.import_execute(999_999) is None
    job.refresh_from_db()
    assert (job.ok_rows, job.error_rows) == (4, 8)
    assert AuditEntry.objects.filter(chain=f"imports.importjob:{job.pk}").count() == 2


def test_a_user_who_lost_the_right_before_the_job_ran(world):
    job = services.import_queue(user=world.pudong_agent, filename="a.csv", content=MIXED_CSV)
    RoleAssignment.objects.filter(user=world.pudong_agent).delete()
    services.import_execute(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "无权" in job.message
    assert (job.processed_rows, job.ok_rows) == (0, 0) and job.source is None
    assert not Customer.objects.filter(phone="13900000001").exists()
    assert AuditEntry.objects.filter(chain=f"imports.importjob:{job.pk}", action="import.finish").exists()


def test_api_background(world, api_client):
    r = api_client.post("/imports/?background=true", FILES={"file": SimpleUploadedFile("x.png", PNG)},
                        auth=world.pudong_agent, user=world.pudong_agent)
    assert r.status_code == 400 and "file" in r.json()["errors"]  # refused at once
    assert ImportJob.objects.count() == 0
    r = api_client.post("/imports/?background=true", FILES={"file": SimpleUploadedFile("a.csv", MIXED_CSV)},
                        auth=world.pudong_agent, user=world.pudong_agent)
    assert r.status_code == 202, r.content
    body = r.json()
    assert (body["status"], body["total_rows"], body["processed_rows"], body["ok_rows"]) == ("queued", 12, 0, 0)
    tasks.import_process(body["id"])
    r = api_client.get(f"/imports/{body['id']}", auth=world.pudong_agent, user=world.pudong_agent)
    got = r.json()
    assert (got["status"], got["processed_rows"], got["ok_rows"], got["error_rows"]) == ("done", 12, 4, 8)
    assert got["report_url"] and len(got["errors"]) == 8
    # the default stays synchronous: the finished job
    r = _upload(api_client, world.pudong_agent, csv_bytes([r for _c, r in MIXED[:2]]))
    assert r.status_code == 201 and r.json()["status"] == "done" and r.json()["processed_rows"] == 2


# ---------------------------------------------------------------- a real thread, on PostgreSQL

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_upload_runs_in_a_thread_of_the_web_process(world, client, page_urls, settings):
    assert connection.vendor == "postgresql"
    settings.CELERY_BROKER_URL = ""  # the embedded default
    rows = [[f"客户{i}", f"1390001{i:04d}", "上海市", "上海市", "浦东新区", f"路{i}号", "", "",
             f"SN-T-{i:05d}", "KFR-35GW", PAST, "", ""] for i in range(1200)]
    rows[7][1] = "bad"
    client.force_login(world.pudong_agent)
    r = _post(client, csv_bytes(rows))
    job = ImportJob.objects.get()
    assert r.status_code == 302
    status_url = reverse("imports:job_status", args=[job.pk])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        part = client.get(status_url).text
        job.refresh_from_db()
        if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
            break
        assert 'hx-trigger="every 1s"' in part
        time.sleep(0.05)
    for t in threading.enumerate():
        if t.name == f"import-{job.pk}":
            t.join(30)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.message
    assert (job.total_rows, job.processed_rows, job.ok_rows, job.error_rows) == (1200, 1200, 1199, 1)
    assert (job.customers_created, job.units_created) == (1199, 1199) and job.source is None
    assert Unit.objects.filter(serial__startswith="SN-T-").count() == 1199
    part = client.get(status_url).text
    assert "hx-trigger" not in part, part
    assert 'data-count="ok">1199<' in part, part
    assert job.row_errors.get().row_number == 9
    assert audit_verify().ok


def test_a_job_whose_process_died_is_swept_as_failed(world):
    import datetime as dt

    from django.utils import timezone

    job = services.import_queue(user=world.pudong_agent, filename="a.csv", content=MIXED_CSV)
    assert services.import_sweep_stale() == 0  # fresh: left alone
    later = timezone.now() + services.STALE_AFTER + dt.timedelta(seconds=1)
    assert services.import_sweep_stale(now=later) == 1
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.source is None and "中断" in job.message
    assert AuditEntry.objects.filter(action="import.stale", object_id=str(job.pk)).exists()
    assert services.import_execute(job.pk) is None  # a late worker does not run it any more
    assert audit_verify().ok
