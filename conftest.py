"""Shared pytest fixtures. App-specific ones live in each app's tests/."""

import pytest


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw-for-tests")
    client.force_login(user)
    return client
