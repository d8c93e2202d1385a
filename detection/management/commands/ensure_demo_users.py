import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    requires_system_checks = []  # useful even while the model weights are missing
    help = (
        "Create a demo user and a demo administrator for a local run, and print their logins. "
        "The passwords are generated once and kept in var/demo_logins so they stay the same."
    )

    def handle(self, *args, **options) -> None:
        logins_file = settings.VAR_DIR / "demo_logins"
        saved = (
            dict(line.split(":", 1) for line in logins_file.read_text().split() if ":" in line)
            if logins_file.exists()
            else {}
        )
        users = get_user_model()
        lines = []
        for username, is_admin in (("demo", False), ("admin", True)):
            password = saved.get(username) or secrets.token_urlsafe(9)
            user, _ = users.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = is_admin
            user.set_password(password)
            user.save()
            saved[username] = password
            lines.append((username, password, is_admin))
        logins_file.write_text("".join(f"{name}:{password}\n" for name, password in saved.items()))
        logins_file.chmod(0o600)
        for username, password, is_admin in lines:
            role = "administrator (review queue at /admin/)" if is_admin else "user"
            self.stdout.write(f"  {role:<40} username: {username:<6} password: {password}")
