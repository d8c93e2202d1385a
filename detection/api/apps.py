from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "detection.api"
    label = "detection_api"
    verbose_name = "Deepfake detection API"

    def ready(self) -> None:
        # Connecting the webhook receiver to detection.signals.analysis_finished is the import's side effect.
        from . import webhooks  # noqa: F401
