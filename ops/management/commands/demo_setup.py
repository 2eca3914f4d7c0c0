from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.demo.setup import demo_setup


class Command(BaseCommand):
    help = "Seed the demo tier, channel and engineers (demo mode only)."

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            raise CommandError("Demo mode is off (SLACK_BOT_TOKEN is set or SLABUDDY_MODE=production).")
        channel = demo_setup()
        self.stdout.write(f"Demo ready: tier Demo, channel {channel}.")
