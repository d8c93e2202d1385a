"""System checks: the model weights (the site is useless without them) and the settings' invariants."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_model_weights(app_configs=None, **kwargs) -> list[Error]:
    try:
        from ml.registry import check_weights
    except Exception as exc:  # ImportError, or a broken ml install
        return [
            Error(
                f"The ML pipeline cannot be imported: {exc}",
                hint="Install the requirements: pip install -r requirements.txt "
                "&& pip install --no-deps -r requirements-nodeps.txt",
                id="detection.E001",
            )
        ]
    return [
        Error(problem, hint="See README.md, 'Model weights'.", id="detection.E002")
        for problem in check_weights()
    ]


@register()
def check_job_and_review_settings(app_configs=None, **kwargs) -> list[Error]:
    """Invariants between settings that the code relies on, checked at start-up instead of in comments."""
    errors = []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if visibility <= settings.JOB_STALE_SECONDS:
        errors.append(
            Error(
                f"BROKER_VISIBILITY_TIMEOUT ({visibility} s) must exceed JOB_STALE_SECONDS "
                f"({settings.JOB_STALE_SECONDS} s)",
                hint="Otherwise Redis redelivers a job whose worker died before its heartbeat looks stale, "
                "and the redelivery is put off again and again.",
                id="detection.E010",
            )
        )
    if visibility <= settings.JOB_HARD_TIME_LIMIT:
        errors.append(
            Error(
                f"BROKER_VISIBILITY_TIMEOUT ({visibility} s) must exceed the longest a job may run "
                f"(JOB_SOFT_TIME_LIMIT + 60 = {settings.JOB_HARD_TIME_LIMIT} s)",
                hint="Otherwise Redis hands a job that is still running to a second worker, and that copy "
                "uses up one of the file's attempts.",
                id="detection.E012",
            )
        )
    if settings.JOB_HEARTBEAT_SECONDS >= settings.JOB_STALE_SECONDS:
        errors.append(
            Error(
                f"JOB_HEARTBEAT_SECONDS ({settings.JOB_HEARTBEAT_SECONDS}) must be below JOB_STALE_SECONDS "
                f"({settings.JOB_STALE_SECONDS})",
                hint="A live job would look abandoned between two heartbeats and be run twice.",
                id="detection.E011",
            )
        )
    for name in ("MAX_UPLOAD_MB", "MAX_FILES_PER_UPLOAD", "MAX_VIDEO_SECONDS", "JOB_MAX_ATTEMPTS"):
        if getattr(settings, name) < 1:
            errors.append(Error(f"{name} must be at least 1", id="detection.E014"))
    return errors
