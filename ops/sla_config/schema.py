"""The ``sla_config`` file format now lives in ``escalation/sla_config_schema.py``, below the
reports layer, so that replays (reports/replay/) read proposed policies with the same checks as
the import. This name stays for callers that knew the old place."""

from escalation.sla_config_schema import (  # noqa: F401
    ConfigError,
    ConfigInvalid,
    SlaConfig,
    config_read,
    duration_parse,
    duration_text,
)
