"""Shared pytest configuration. Django is configured by pytest-django from pyproject.toml
(DJANGO_SETTINGS_MODULE = detector_site.settings_test); the site's fixtures live in tests/detection/."""
