"""The Dask client that training runs on when it does not run in-process
(`models.training.train.fit_booster`'s `client`).

By default a `LocalCluster` on this machine: worker processes (XGBoost releases the GIL, but a
worker per process keeps each one's memory its own), quiet logs and no dashboard, since nobody
watches a training run's web page; the scheduler's own HTTP routes take a free port, since a fixed
one clashes between concurrent runs.
When `DASK_SCHEDULER_ADDRESS` is set, a real cluster's scheduler at that address is used instead
and nothing is started: the same code trains on a laptop and on a cluster. The variable is read
when the client is opened, never at import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import cast

from distributed import Client, LocalCluster
from pydantic import Field

from models.training.config_part import ConfigPart

SCHEDULER_ADDRESS = "DASK_SCHEDULER_ADDRESS"


class ClusterConfig(ConfigPart):
    """The local cluster's shape; ignored when `DASK_SCHEDULER_ADDRESS` names a scheduler."""

    n_workers: int = Field(default=2, ge=1, description="Worker processes (or threads) to start.")
    threads_per_worker: int | None = Field(
        default=None,
        ge=1,
        description="Threads per worker; none: the machine's cores shared evenly among workers.",
    )
    processes: bool = Field(
        default=True, description="Workers as processes (true) or as threads of this process."
    )

    def threads(self) -> int:
        """Threads per worker, at least one."""
        if self.threads_per_worker is not None:
            return self.threads_per_worker
        return max(1, (os.cpu_count() or 1) // self.n_workers)


def scheduler_address(environ: Mapping[str, str] | None = None) -> str | None:
    """The scheduler named by `DASK_SCHEDULER_ADDRESS` (e.g. `tcp://scheduler:8786`); None when
    the variable is unset or empty, meaning a local cluster."""
    address = (os.environ if environ is None else environ).get(SCHEDULER_ADDRESS, "").strip()
    return address or None


@contextmanager
def dask_client(config: ClusterConfig | None = None) -> Iterator[Client]:
    """A client on the scheduler at `DASK_SCHEDULER_ADDRESS` if set, else on a fresh
    `LocalCluster` shaped by `config`; both closed on exit (a local cluster's workers stop with
    it, so no process outlives the block)."""
    address = scheduler_address()
    if address is not None:
        with Client(address, set_as_default=False) as client:
            yield client
        return
    config = config or ClusterConfig()
    with (
        LocalCluster(
            n_workers=config.n_workers,
            threads_per_worker=config.threads(),
            processes=config.processes,
            # no dashboard; the scheduler's HTTP routes (health, metrics) on a free port, so that
            # concurrent clusters never compete for the default 8787
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def worker_count(client: Client) -> int:
    """How many workers the client's scheduler has now."""
    # a synchronous client answers at once; its hint also allows an asynchronous one's coroutine
    return len(cast(dict[str, int], client.nthreads()))


@contextmanager
def training_client(workers: int) -> Iterator[Client | None]:
    """A Dask client to train on when one is asked for (workers > 0) or a cluster is named
    (DASK_SCHEDULER_ADDRESS), else None: in-process training, which a single machine does
    fastest (one Dask worker trains the same booster, byte for byte, more slowly)."""
    if workers == 0 and scheduler_address() is None:
        yield None
        return
    with dask_client(ClusterConfig(n_workers=max(workers, 1))) as client:
        yield client
