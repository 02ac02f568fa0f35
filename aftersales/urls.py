from django.contrib import admin
from django.urls import include, path

from aftersales.api.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("imports/", include("aftersales.imports.urls")),
    path("feedback/", include("aftersales.feedback.urls")),
    path("parts/", include("aftersales.parts.urls")),
    path("assets/", include("aftersales.assets.urls")),
    path("charges/", include("aftersales.charges.urls")),
    path("quality/", include("aftersales.quality.urls")),
    path("team/", include("aftersales.staff.urls")),
    path("", include("aftersales.web.urls")),
]
