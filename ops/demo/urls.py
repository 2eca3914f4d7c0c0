from django.urls import path

from ops.demo import views

urlpatterns = [
    path("demo/", views.demo_page, name="demo"),
    path("demo/state.json", views.demo_state, name="demo-state"),
    path("demo/open", views.demo_open_ticket, name="demo-open"),
    path("demo/mention", views.demo_mention, name="demo-mention"),
    path("demo/reply", views.demo_reply, name="demo-reply"),
    path("demo/customer", views.demo_customer, name="demo-customer"),
    path("demo/waiting", views.demo_waiting, name="demo-waiting"),
    path("demo/close", views.demo_close, name="demo-close"),
    path("demo/button", views.demo_button, name="demo-button"),
    path("demo/helpdesk", views.demo_helpdesk_post, name="demo-helpdesk"),
    path("demo/edit", views.demo_edit, name="demo-edit"),
]
