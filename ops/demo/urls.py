from django.urls import path

from ops.demo import views

urlpatterns = [
    path("demo/", views.demo_page, name="demo"),
    path("demo/state.json", views.demo_state, name="demo-state"),
    path("demo/open", views.demo_open_ticket, name="demo-open"),
    path("demo/mention", views.demo_mention, name="demo-mention"),
    path("demo/reply", views.demo_reply, name="demo-reply"),
]
