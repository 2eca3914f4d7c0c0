"""Create the admin login that ``make run`` prints.

The password comes from SLABUDDY_ADMIN_PASSWORD, or is generated once and kept
in the data folder (mode 0600) so that it can be printed again on each start.
A password changed in the admin is left alone unless the variable is set.
"""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Ensure an admin superuser exists and print how to log in."

    def handle(self, *args, **options):
        username = os.environ.get("SLABUDDY_ADMIN_USER") or "admin"
        env_password = os.environ.get("SLABUDDY_ADMIN_PASSWORD")
        password_file = settings.DATA_DIR / "admin_password"
        User = get_user_model()
        user = User.objects.filter(username=username).first()

        if user is None:
            password = env_password or secrets.token_urlsafe(12)
            if not env_password:
                password_file.write_text(password)
                password_file.chmod(0o600)
            User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"Admin login: user {username!r}, password {password!r}")
            return
        if env_password:
            user.set_password(env_password)
            user.is_staff = user.is_superuser = user.is_active = True
            user.save()
            self.stdout.write(f"Admin login: user {username!r}, password {env_password!r}")
            return
        stored = password_file.read_text().strip() if password_file.exists() else ""
        if stored and user.check_password(stored):
            self.stdout.write(f"Admin login: user {username!r}, password {stored!r}")
        else:
            self.stdout.write(
                f"Admin login: user {username!r}, password unchanged "
                "(set SLABUDDY_ADMIN_PASSWORD to reset it)."
            )
