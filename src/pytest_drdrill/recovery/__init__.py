"""Recovery code: health checks, the detecting monitor, and the reference failover."""

from __future__ import annotations
