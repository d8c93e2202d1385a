import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detector_site.settings")

application = get_wsgi_application()


def import_request_path() -> None:
    """Do now what the first upload would do lazily, about 3-7 s on a busy two-core machine: import the
    URLconf (every view, form and the API), the upload probe's libraries (OpenCV, NumPy, Pillow) and
    Celery's Redis transport, and build the URL and task tables. Under `gunicorn --preload`
    this runs once in the master and the forked workers share it; otherwise each worker does it as it
    boots, before it takes a request. Nothing here opens a connection: a socket opened before the fork
    would be shared by every worker."""
    from django.urls import get_resolver, reverse

    from detection.staging import import_media_probe

    from .celery import app

    get_resolver().url_patterns  # noqa: B018 (loading the URLconf imports the views)
    reverse("upload")  # and the first reverse() builds the lookup tables every page then uses
    import_media_probe()
    # A broker Connection resolves (imports) kombu's transport when made; it connects only when used.
    app.connection_for_write().release()
    app.finalize()  # the task classes, otherwise built by the first publish


import_request_path()
