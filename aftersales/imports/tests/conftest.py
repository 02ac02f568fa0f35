"""Fixtures of the import tests: the API router and the page mounted for the test client, and
uploaded jobs run in the test's own thread."""

import pytest
from django.urls import include, path

from aftersales.core.errors import DomainError


@pytest.fixture
def api_client():
    from ninja import NinjaAPI
    from ninja.testing import TestClient

    from aftersales.imports.api import router

    api = NinjaAPI(urls_namespace="imports-test")

    @api.exception_handler(DomainError)
    def on_domain_error(request, exc):
        return api.create_response(request, exc.as_dict(), status=exc.status)

    api.add_router("/imports/", router)
    return TestClient(api)


urlpatterns = [path("imports/", include("aftersales.imports.urls"))]


@pytest.fixture
def page_urls(settings):
    """The page under /imports/, whether or not aftersales/urls.py mounts it yet."""
    from aftersales import urls as root

    settings.ROOT_URLCONF = type("URLs", (), {"urlpatterns": [*root.urlpatterns, *(
        [] if any(getattr(p, "namespace", None) == "imports" for p in root.urlpatterns) else urlpatterns)]})


@pytest.fixture
def imports_inline(monkeypatch):
    """Uploaded jobs run in the test's thread when their transaction commits (not in a thread of
    their own, which could not see the test's uncommitted data)."""
    from aftersales.imports import tasks

    monkeypatch.setattr(tasks, "start", tasks.import_process)
