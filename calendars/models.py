"""The engineer roster. Calendar sources, synced intervals and overrides join it."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    SUPPORT_ENGINEER = "support_engineer", "Support engineer"
    HEAD_OF_SUCCESS = "head_of_success", "Head of success"
    OTHER = "other", "Other"


class Engineer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True, null=True, blank=True)
    slack_user_id = models.CharField(
        max_length=32, unique=True, null=True, blank=True, help_text="U… (mentioned as <@U…>)"
    )
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.SUPPORT_ENGINEER)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Blank strings would collide on the unique constraints; store NULL.
        self.email = self.email or None
        self.slack_user_id = self.slack_user_id or None
        super().save(*args, **kwargs)
