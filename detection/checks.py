"""System check: the site is useless without the model weights, so say so at start-up."""

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
