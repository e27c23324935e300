"""The embedded demo's settings, run as a separate process (pytest-django forces DEBUG off)."""

from __future__ import annotations

from tests.phm_portal.test_settings import run_manage

FETCH = """
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
for path in ("/no-such-page/", "/static/portal.css"):
    response = client.get(path)
    body = b"".join(response) if response.streaming else response.content
    print(path, response.status_code, body.decode(errors="replace")[:20000])
print("DEBUG", settings.DEBUG, "SSL", settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE)
"""


def test_the_demo_serves_the_portals_own_404_page_and_its_static_files(tmp_path):
    result = run_manage(tmp_path, {"PHM_DEMO": "1"}, "shell", "-c", FETCH)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "/no-such-page/ 404" in out
    assert "<h1>Page not found</h1>" in out and "If you typed the web address" in out
    assert "URLconf" not in out and "DEBUG = True" not in out  # not Django's technical page
    assert "/static/portal.css 200" in out
    assert "DEBUG False SSL False False" in out


def test_the_demo_can_still_turn_debug_on(tmp_path):
    result = run_manage(
        tmp_path,
        {"PHM_DEMO": "1", "DEBUG": "1"},
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
    )
    assert result.stdout.strip().endswith("True"), result.stderr


def test_the_periodic_tasks_routine_lines_are_quiet_unless_asked(tmp_path):
    show = (
        "import logging; print([logging.getLevelName(logging.getLogger(n).getEffectiveLevel()) "
        "for n in ('celery.beat', 'celery.app.trace', 'celery.worker.strategy')])"
    )
    quiet = run_manage(tmp_path, {"PHM_DEMO": "1"}, "shell", "-c", show)
    assert quiet.stdout.strip().splitlines()[-1] == "['WARNING', 'WARNING', 'WARNING']", (
        quiet.stderr
    )
    loud = run_manage(
        tmp_path, {"PHM_DEMO": "1", "PHM_CELERY_ROUTINE_LOG_LEVEL": "INFO"}, "shell", "-c", show
    )
    assert loud.stdout.strip().splitlines()[-1] == "['INFO', 'INFO', 'INFO']", loud.stderr


CRASH = """
import sys, types
from django.test import Client, override_settings
from django.urls import path
import phm_portal.urls as real

def crash(request):
    raise RuntimeError("a bug")

urls = types.ModuleType("crash_urls")
urls.urlpatterns = [*real.urlpatterns, path("crash/", crash)]
urls.handler404, urls.handler500 = real.handler404, real.handler500
sys.modules["crash_urls"] = urls
with override_settings(ROOT_URLCONF="crash_urls"):
    response = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False).get("/crash/")
print("crash", response.status_code, response.content.decode()[:20000])
"""


def test_the_demo_serves_the_portals_own_500_page(tmp_path):
    result = run_manage(tmp_path, {"PHM_DEMO": "1"}, "shell", "-c", CRASH)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "crash 500" in out
    assert "<h1>Sorry, there is a problem with the service</h1>" in out
    assert "Traceback" not in out and "a bug" not in out  # not Django's technical page
