"""Topologies: where the system under test runs (local processes; Docker in a later release)."""

from __future__ import annotations
