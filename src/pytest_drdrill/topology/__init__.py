"""Topologies: where the system under test runs (local processes, Docker, a running stack)."""

from __future__ import annotations
