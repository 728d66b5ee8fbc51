"""Helpers of the Docker backend's tests."""

from __future__ import annotations

from pathlib import Path

from pytest_drdrill.topology.docker_engine import LABEL_RUN, connect

ROOT = Path(__file__).resolve().parents[2]


def run_objects(run_id: str) -> list[str]:
    """Every container, network and volume labelled with ``run_id``."""
    client = connect()
    try:
        label = {"label": f"{LABEL_RUN}={run_id}"}
        return (
            [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
            + [f"network {n.name}" for n in client.networks.list(filters=label)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=label)]
        )
    finally:
        client.close()
