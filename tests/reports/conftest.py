from tests.engine.conftest import engineers, ladder, make_ticket, next_response, thread_in  # noqa: F401
