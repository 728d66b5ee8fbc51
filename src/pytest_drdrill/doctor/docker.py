"""The Docker backend's needs: a daemon that answers and the images it runs.

Checked with the backend's own calls (:func:`~pytest_drdrill.topology.docker_engine.connect`
and :func:`~pytest_drdrill.topology.docker_engine.missing_images`): the backend never
pulls, so an image the daemon lacks is built here or named with ``--drill-docker-images``.

.. versionadded:: 0.6
"""

from __future__ import annotations

from pytest_drdrill.doctor.finding import Finding, Settings, script
from pytest_drdrill.errors import DrillError

#: Seconds the daemon may take to answer before it counts as absent.
DAEMON_TIMEOUT = 3.0


def daemon_and_images(settings: Settings) -> list[Finding]:
    """Whether a Docker daemon answers, and which of the backend's images it has."""
    from pytest_drdrill.topology.docker_engine import (
        DEFAULT_IMAGES,
        Images,
        connect,
        missing_images,
    )

    engine_fix = script("docker-engine", "apt-get install -y docker.io && dockerd &")
    try:
        images = Images.parse(settings.docker_images, where="--drill-docker-images")
    except ValueError as exc:
        return [
            Finding("Docker images", ok=False, detail=str(exc), fix="correct --drill-docker-images")
        ]
    try:
        client = connect(timeout=DAEMON_TIMEOUT)
    except DrillError as exc:
        detail = str(exc).split(". Start one", 1)[0]
        if "'docker' Python package" in detail:
            engine_fix = "pip install docker"
        return [
            Finding("Docker daemon", ok=False, detail=detail, fix=engine_fix),
            Finding(
                "Docker images",
                ok=False,
                detail="not checked: no daemon answers",
                fix=f"{engine_fix}, then {_build()}",
            ),
        ]
    try:
        engine = client.version().get("Version", "?")
        missing = missing_images(client, images)
    finally:
        client.close()
    daemon = Finding("Docker daemon", ok=True, detail=f"Docker {engine} answers")
    wanted = ", ".join(images.as_dict().values())
    if not missing:
        return [daemon, Finding("Docker images", ok=True, detail=wanted)]
    # Only the drdrill/<service> images are built by the script; others are the user's.
    pairs = [entry.split("=", 1) for entry in missing]
    ours = [service for service, image in pairs if image == DEFAULT_IMAGES.get(service)]
    fixes = []
    if ours:
        build = _build()
        fixes.append(f"{build} {' '.join(ours)}" if build.endswith("build-images") else build)
    theirs = [image for service, image in pairs if service not in ours]
    if theirs:
        fixes.append(f"docker pull (or docker load) {' '.join(theirs)}")
    fix = "; ".join(fixes)
    return [
        daemon,
        Finding("Docker images", ok=False, detail=f"missing {', '.join(missing)}", fix=fix),
    ]


def _build() -> str:
    return script(
        "build-images",
        "docker build each image from docker/ in pytest-drdrill's repository",
        alternative=False,
    )
