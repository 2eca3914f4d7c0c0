"""Every admin page renders for staff and sends anonymous users to the login.

Objects come from every factory in each app's ``factories.py``, so a model
added later is covered as soon as it has a factory.
"""

import importlib
import inspect

import factory
import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

APPS = ("tickets", "escalation", "calendars")


def _all_factories():
    for app in APPS:
        module = importlib.import_module(f"{app}.factories")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, factory.django.DjangoModelFactory) and obj.__module__ == module.__name__:
                yield obj


@pytest.fixture
def one_of_everything():
    for factory_class in _all_factories():
        factory_class()


def _admin_urls():
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        yield model, model_admin, f"admin:{opts.app_label}_{opts.model_name}"


def test_every_admin_page_renders_for_staff(staff_client, one_of_everything):
    checked = 0
    request = staff_client.get(reverse("admin:index")).wsgi_request
    for model, model_admin, base in _admin_urls():
        response = staff_client.get(reverse(f"{base}_changelist"))
        assert response.status_code == 200, f"{base} changelist: {response.status_code}"
        if model_admin.has_add_permission(request):
            response = staff_client.get(reverse(f"{base}_add"))
            assert response.status_code == 200, f"{base} add: {response.status_code}"
        obj = model.objects.first()
        if obj is not None:
            response = staff_client.get(reverse(f"{base}_change", args=[obj.pk]))
            assert response.status_code == 200, f"{base} change: {response.status_code}"
        checked += 1
    assert checked >= 8


def test_anonymous_is_sent_to_login(client, one_of_everything):
    for _model, _admin, base in _admin_urls():
        response = client.get(reverse(f"{base}_changelist"))
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_tickets_and_levels_are_read_only_history(staff_client, one_of_everything):
    from tickets.models import Ticket

    ticket = Ticket.objects.first()
    page = staff_client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert 'name="slack_ts"' not in page
    assert staff_client.get(reverse("admin:tickets_ticket_add")).status_code == 403
