"""A proposed policy file: YAML in the format of ``sla_config``, read and checked with the same
reader as ``sla_config import`` (escalation/sla_config_schema.py), but never applied."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from escalation.sla_config_schema import ConfigError, ConfigInvalid, SlaConfig, config_read, known_references


@dataclass
class PolicyFileInvalid(ValueError):
    """Every problem of the file, each with the path of its key ('' for the file as a whole)."""

    errors: list[ConfigError]

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def policy_file_read(text: str) -> SlaConfig:
    """Check ``text``; raises PolicyFileInvalid with every problem (bad YAML, unknown keys, bad
    durations, unknown tiers or engineers ...)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyFileInvalid([ConfigError("", f"not valid YAML: {exc}")]) from None
    tiers, engineers = known_references()
    try:
        config = config_read(document, known_tiers=tiers, known_engineers=engineers)
    except ConfigInvalid as invalid:
        raise PolicyFileInvalid(invalid.errors) from None
    if not any(tier.policies for tier in config.tiers):
        raise PolicyFileInvalid([ConfigError("tiers", "names no tier with policies: nothing to replay")])
    return config
