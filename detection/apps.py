from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Deepfake detection"

    def ready(self) -> None:
        # Registering checks and signal handlers is the side effect of importing these modules.
        from . import checks, signals  # noqa: F401
