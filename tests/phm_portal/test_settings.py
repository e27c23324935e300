"""The settings module read from the environment, run as a separate process."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(tmp_path, env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "PHM_DEMO",
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
            "PHM_BLIND_INDEX_KEY",
            "PHM_FIELD_ENCRYPTION_KEY",
        }
    }
    env.update(
        {"PHM_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    )
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Gq2vR9pLm4Tz8Wc1Kd6Yh3Nb5Fs0Ju-ZeQaXo_MiVrPtLyHgDkBnCsEwUfAj",
    "ALLOWED_HOSTS": "portal.example.nhs.uk",
    "PHM_KEY_ENCRYPTION_KEY": "c3ludGhldGljLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=",
    # 32 bytes each, base64: made up for this test, never used anywhere else.
    "PHM_BLIND_INDEX_KEY": "bG9va3VwLWtleS1mb3ItdGhlLXNldHRpbmdzLXRlc3Q=",
    "PHM_FIELD_ENCRYPTION_KEY": "ZmllbGQta2V5LWZvci10aGUtc2V0dGluZ3MtdGVzdHM=",
}


def test_production_settings_pass_the_deployment_checks(tmp_path):
    result = run_manage(tmp_path, PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_a_missing_secret_in_production_stops_start_up_with_a_clear_message(tmp_path):
    env = {**PRODUCTION}
    del env["SECRET_KEY"]
    result = run_manage(tmp_path, env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_the_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(PRODUCTION["SECRET_KEY"] + "\n")
    env = {**PRODUCTION, "SECRET_KEY_FILE": str(secret_file)}
    del env["SECRET_KEY"]
    result = run_manage(tmp_path, env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr


def test_production_without_allowed_hosts_is_refused(tmp_path):
    env = {**PRODUCTION}
    del env["ALLOWED_HOSTS"]
    result = run_manage(tmp_path, env, "check")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("DEBUG", "maybe", "DEBUG must be one of"), ("DATABASE_URL", "nonsense://x", "DATABASE_URL")],
)
def test_a_bad_value_is_named(tmp_path, name, value, message):
    result = run_manage(tmp_path, {**PRODUCTION, name: value}, "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_the_demo_makes_its_own_secret_once_under_the_var_dir(tmp_path):
    first = run_manage(tmp_path, {"PHM_DEMO": "1"}, "check")
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "demo_secret_key").read_text()
    assert len(key) >= 50
    run_manage(tmp_path, {"PHM_DEMO": "1"}, "check")
    assert (tmp_path / "demo_secret_key").read_text() == key


@pytest.mark.parametrize("name", ["PHM_BLIND_INDEX_KEY", "PHM_FIELD_ENCRYPTION_KEY"])
def test_a_missing_data_key_in_production_is_named(tmp_path, name):
    env = {**PRODUCTION}
    del env[name]
    result = run_manage(tmp_path, env, "check")
    assert result.returncode != 0
    assert f"{name} is not set" in result.stderr


def test_a_data_key_of_the_wrong_length_is_named(tmp_path):
    result = run_manage(tmp_path, {**PRODUCTION, "PHM_FIELD_ENCRYPTION_KEY": "c2hvcnQ="}, "check")
    assert result.returncode != 0
    assert "PHM_FIELD_ENCRYPTION_KEY must be 32 bytes" in result.stderr


def test_a_data_key_can_come_from_a_file(tmp_path):
    key_file = tmp_path / "blind"
    key_file.write_text(PRODUCTION["PHM_BLIND_INDEX_KEY"] + "\n")
    env = {**PRODUCTION, "PHM_BLIND_INDEX_KEY_FILE": str(key_file)}
    del env["PHM_BLIND_INDEX_KEY"]
    result = run_manage(tmp_path, env, "check")
    assert result.returncode == 0, result.stderr


def test_the_demo_makes_its_data_keys_once_under_the_var_dir(tmp_path):
    assert run_manage(tmp_path, {"PHM_DEMO": "1"}, "check").returncode == 0
    keys = {
        n: (tmp_path / n).read_text() for n in ("demo_blind_index_key", "demo_field_encryption_key")
    }
    run_manage(tmp_path, {"PHM_DEMO": "1"}, "check")
    for name, key in keys.items():
        assert len(base64.b64decode(key)) == 32
        assert (tmp_path / name).read_text() == key


PROBE = """
from django.conf import settings
from django.test import Client
print("2FA", settings.PHM_REQUIRE_2FA)
# An API answer needs neither the database nor collected static files; the headers are
# the same on every answer.
response = Client().get("/api/v1/me/", secure=True, HTTP_HOST="portal.example.nhs.uk")
print("STATUS", response.status_code)
for name in ("Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options",
             "X-Frame-Options", "Referrer-Policy"):
    print(name, "=", response.get(name, ""))
"""


def test_production_answers_with_the_security_headers_and_requires_a_second_factor(tmp_path):
    result = run_manage(tmp_path, PRODUCTION, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2FA True" in out  # on by default outside the embedded demo
    assert "STATUS 401" in out  # not signed in
    assert "Strict-Transport-Security = max-age=31536000; includeSubDomains; preload" in out
    assert "X-Content-Type-Options = nosniff" in out
    assert "X-Frame-Options = DENY" in out
    assert "Referrer-Policy = same-origin" in out
    csp = next(line for line in out.splitlines() if line.startswith("Content-Security-Policy"))
    # django-csp writes the directives in no fixed order: compare them as a mapping.
    directives = dict(d.strip().split(" ", 1) for d in csp.split(" = ", 1)[1].split(";"))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert "unsafe-inline" not in csp


def test_production_can_turn_the_second_factor_off_and_names_a_bad_lockout_setting(tmp_path):
    probe = "from django.conf import settings; print(settings.PHM_REQUIRE_2FA)"
    result = run_manage(tmp_path, {**PRODUCTION, "PHM_REQUIRE_2FA": "0"}, "shell", "-c", probe)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
    bad = run_manage(tmp_path, {**PRODUCTION, "PHM_LOGIN_FAILURE_LIMIT": "0"}, "check")
    assert bad.returncode != 0 and "PHM_LOGIN_FAILURE_LIMIT must be at least 1" in bad.stderr


def test_the_old_lockout_setting_that_let_strangers_lock_staff_out_is_refused(tmp_path):
    # PHM_LOGIN_LOCKOUT_BY=username let anyone lock a named account from anywhere.
    bad = run_manage(tmp_path, {**PRODUCTION, "PHM_LOGIN_LOCKOUT_BY": "username"}, "check")
    assert bad.returncode != 0 and "PHM_LOGIN_LOCKOUT_BY is no longer read" in bad.stderr


def test_the_lockout_behind_the_proxy_passes_the_deployment_checks(tmp_path):
    env = {**PRODUCTION, "PHM_BEHIND_TLS_PROXY": "1"}
    result = run_manage(tmp_path, env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    "setting",
    ["DEFAULT_PAGINATION_CLASS", "DEFAULT_PARSER_CLASSES", "EXCEPTION_HANDLER"],
)
def test_each_api_setting_naming_our_code_loads_first_in_a_fresh_process(tmp_path, setting):
    """Django runs its system checks in no fixed order (a set): DRF's pagination check may
    be the first to import phm_portal.rest, before anything imported DRF's views. A cycle
    there stopped `manage.py check`, `load_demo` and every worker at start-up, depending
    on the process."""
    probe = (
        "from rest_framework.settings import api_settings; "
        f"value = api_settings.{setting}; "
        "print(*(v.__module__ for v in (value if isinstance(value, list) else [value])))"
    )
    result = run_manage(tmp_path, {"PHM_DEMO": "1"}, "shell", "--no-imports", "-c", probe)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "phm_portal.rest" in result.stdout.split()
