"""One Docker bridge network per region, with static addresses handed out by the backend.

Docker only lets a container keep a chosen address on a network whose subnet was given
at creation. So each network is first created with a subnet of Docker's own choosing
(which never overlaps another network), then re-created with that subnet named: a
restarted or reconnected container then gets its address back.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import TYPE_CHECKING

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology._protocol import BACKUP_REGION, REGIONS

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import docker
    from docker.models.networks import Network


class RegionNetworks:
    """The regions' networks of one run, and the addresses given out on them.

    :param client: the Docker client.
    :param prefix: the networks' name prefix (one name per run).
    :param labels: labels every network carries (the run's).

    .. versionadded:: 0.4
    """

    def __init__(self, client: docker.DockerClient, prefix: str, labels: Mapping[str, str]) -> None:
        self.client = client
        self.prefix = prefix
        self.labels = dict(labels)
        self.networks: dict[str, Network] = {}
        self._free: dict[str, Iterator[ipaddress.IPv4Address]] = {}
        self._lock = threading.Lock()

    def create(self) -> RegionNetworks:
        """Create a network per region, the backup region's (its store of backup copies) too.

        The regions are :data:`~pytest_drdrill.topology._protocol.REGIONS` and
        :data:`~pytest_drdrill.topology._protocol.BACKUP_REGION`.
        """
        import docker.types

        for region in (*REGIONS, BACKUP_REGION):
            name = f"{self.prefix}-{region}"
            probe = self.client.networks.create(name, driver="bridge", labels=self.labels)
            try:
                config = (probe.attrs.get("IPAM", {}).get("Config") or [{}])[0]
            finally:
                probe.remove()
            subnet = ipaddress.IPv4Network(config.get("Subnet", ""), strict=False)
            gateway = ipaddress.IPv4Address(config.get("Gateway") or next(subnet.hosts()))
            pool = docker.types.IPAMPool(subnet=str(subnet), gateway=str(gateway))
            self.networks[region] = self.client.networks.create(
                name,
                driver="bridge",
                labels=self.labels,
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            )
            self._free[region] = _addresses(subnet, gateway)
        return self

    def network(self, region: str) -> Network:
        """The network of ``region``."""
        try:
            return self.networks[region]
        except KeyError:
            raise TopologyError(
                f"no network for region {region!r}; regions: {', '.join(self.networks)}"
            ) from None

    def allocate(self, region: str) -> str:
        """A new address on ``region``'s network, never handed out before in this run."""
        with self._lock:
            try:
                return str(next(self._free[region]))
            except StopIteration:
                raise TopologyError(f"the {region} network has no address left") from None

    def endpoint(self, region: str, address: str) -> dict[str, object]:
        """``networking_config`` that attaches a new container to ``region`` at ``address``."""
        network = self.network(region)
        return {network.name: self.client.api.create_endpoint_config(ipv4_address=address)}

    def remove(self) -> None:
        """Remove the networks (their containers must be gone); never raises."""
        import docker.errors

        for network in self.networks.values():
            try:
                network.remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                import logging

                logging.getLogger(__name__).exception("removing network %s failed", network.name)
        self.networks.clear()


def _addresses(
    subnet: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address
) -> Iterator[ipaddress.IPv4Address]:
    """The subnet's host addresses, the gateway's left out."""
    return (ip for ip in subnet.hosts() if ip != gateway)
