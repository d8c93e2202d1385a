"""Production settings come from the environment; `check --deploy` must be clean with them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "detector_site.settings",
    "DEBUG": "false",
    "SECRET_KEY": "x7!Kq2#pZ9@rT5$wL8^mN3&bV6*cH1(jD4)fG0_sA-yU+eI=oP~" * 2,
    "ALLOWED_HOSTS": "detector.example.com",
    "HTTPS": "true",
    "DATABASE_URL": "postgres://detector:secret@db.example.com:5432/detector",
    "REDIS_URL": "redis://redis.example.com:6379/0",
    "MAX_UPLOAD_MB": "50",
    "MAX_VIDEO_SECONDS": "120",
}


def run_django(*args: str, extra_env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **extra_env, "VAR_DIR": str(tmp_path / "var"), "MEDIA_ROOT": str(tmp_path / "media")}
    env.pop("DJANGO_CONFIGURATION", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def printed_settings(expressions: str, extra_env: dict, tmp_path: Path) -> list[str]:
    """What `print(<expressions>)` over the settings (as `s`) shows in a fresh process, split into words."""
    code = f"from django.conf import settings as s; print({expressions})"
    result = run_django("shell", "--no-imports", "-c", code, extra_env=extra_env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_django(
        "check", "--deploy", "--fail-level", "WARNING", extra_env=PRODUCTION_ENV, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_are_read_from_the_environment(tmp_path):
    expressions = (
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'], s.CELERY_BROKER_URL, "
        "s.ALLOWED_HOSTS, s.MAX_UPLOAD_MB, s.MAX_VIDEO_SECONDS, s.MEDIA_ROOT, s.SESSION_COOKIE_SECURE"
    )
    assert printed_settings(expressions, PRODUCTION_ENV, tmp_path) == [
        "django.db.backends.postgresql",
        "db.example.com",
        "redis://redis.example.com:6379/0",
        "['detector.example.com']",
        "50",
        "120",
        str(tmp_path / "media"),
        "True",
    ]


def test_defaults_are_embedded_sqlite_and_local_redis(tmp_path):
    env = {key: "" for key in PRODUCTION_ENV} | {"DJANGO_SETTINGS_MODULE": "detector_site.settings"}
    printed = printed_settings("s.DATABASES['default']['NAME'], s.CELERY_BROKER_URL", env, tmp_path)
    assert printed == [str(tmp_path / "var" / "db.sqlite3"), "redis://127.0.0.1:6379/0"]


def test_production_cookies_are_secure_and_hidden_from_scripts(tmp_path):
    expressions = (
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.CSRF_COOKIE_HTTPONLY, s.SECURE_CONTENT_TYPE_NOSNIFF, 'unsafe-inline' in "
        "s.CONTENT_SECURITY_POLICY.split('style-src-attr')[0], s.EMAIL_BACKEND"
    )
    env = PRODUCTION_ENV | {"EMAIL_HOST": "smtp.example.com"}
    assert printed_settings(expressions, env, tmp_path) == [
        "True",
        "True",
        "True",
        "True",
        "True",
        "False",
        "django.core.mail.backends.smtp.EmailBackend",
    ]


def test_a_mistyped_media_accel_setting_fails_loudly(tmp_path):
    env = PRODUCTION_ENV | {"MEDIA_ACCEL_REDIRECT": "x-accel"}
    result = run_django("check", extra_env=env, tmp_path=tmp_path)
    assert result.returncode != 0 and "MEDIA_ACCEL_REDIRECT" in result.stderr


def test_a_mistyped_boolean_stops_the_site_instead_of_turning_security_off(tmp_path):
    result = run_django("check", extra_env={**PRODUCTION_ENV, "HTTPS": "ture"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "HTTPS='ture' is not a yes/no value" in result.stderr


def test_a_number_that_is_not_one_stops_the_site(tmp_path):
    result = run_django("check", extra_env={**PRODUCTION_ENV, "MAX_UPLOAD_MB": "50MB"}, tmp_path=tmp_path)
    assert result.returncode != 0 and "MAX_UPLOAD_MB='50MB' is not a number" in result.stderr


@pytest.mark.parametrize(
    "overrides, error_id",
    [
        ({"JOB_STALE_SECONDS": 4000}, "detection.E010"),
        ({"JOB_HARD_TIME_LIMIT": 4000}, "detection.E012"),
        ({"JOB_HEARTBEAT_SECONDS": 10, "JOB_STALE_SECONDS": 5}, "detection.E011"),
        ({"MAX_FILES_PER_UPLOAD": 0}, "detection.E014"),
    ],
)
def test_settings_invariants_are_system_checks(settings, overrides, error_id):
    from detection.checks import check_job_and_review_settings

    # The production default (the test settings' 8 s would already break E012, silenced there).
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": 3600,
    }
    assert check_job_and_review_settings() == []
    for name, value in overrides.items():
        setattr(settings, name, value)
    assert [error.id for error in check_job_and_review_settings()] == [error_id]
