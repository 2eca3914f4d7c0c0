"""Replay ("what if"): past tickets run again under proposed policies, through the engine's own
planning, clock and target-resolution code, side by side with what happened. Reads only."""
