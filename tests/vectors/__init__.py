"""Shared protocol test vectors: ``import vectors`` gives the loader API."""

from .vectors import (
    KINDS,
    PLACEHOLDERS,
    VECTORS_DIR,
    Case,
    VectorError,
    bridge_kinds,
    fill_payload,
    kinds,
    load,
    matches,
    payload_of,
    raw,
    reference_device,
    topic_regex,
    topic_template,
)

__all__ = [
    "KINDS",
    "PLACEHOLDERS",
    "VECTORS_DIR",
    "Case",
    "VectorError",
    "bridge_kinds",
    "fill_payload",
    "kinds",
    "load",
    "matches",
    "payload_of",
    "raw",
    "reference_device",
    "topic_regex",
    "topic_template",
]
