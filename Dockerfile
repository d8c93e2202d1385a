FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Runtime libraries for OpenCV, dlib and torch wheels (no compiler needed).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-nodeps.txt ./
RUN pip install -r requirements.txt \
    && pip install --no-deps -r requirements-nodeps.txt

COPY . .
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /data/media /data/var \
    && chown -R app /data \
    && SECRET_KEY=collectstatic-only VAR_DIR=/tmp/build-var STATIC_ROOT=/app/staticfiles \
       python manage.py collectstatic --noinput --skip-checks

ENV VAR_DIR=/data/var \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "detector_site.wsgi"]
