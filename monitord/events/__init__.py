"""Failure events (SPEC §6): bodies, their lifecycle, the durable outbox and delivery."""
