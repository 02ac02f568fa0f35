"""The browser test skips without Chromium only outside CI; in CI it fails."""

import pytest

from aftersales.conftest import unavailable


def test_missing_browser_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing"):
        unavailable("/usr/bin/chromium is missing")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        unavailable("/usr/bin/chromium is missing")


def test_missing_browser_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        unavailable("/usr/bin/chromium is missing")
