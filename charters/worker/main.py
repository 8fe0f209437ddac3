"""Runs the worker until SIGINT/SIGTERM, then shuts down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from charters.settings import Settings
from charters.temporal_client import connect
from charters.worker import wiring
from charters.workflows.charter_booking import CharterBookingWorkflow

log = logging.getLogger("charters.worker")


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    aws = wiring.aws_clients(settings, max_pool=executor._max_workers)
    http = wiring.http_client(executor._max_workers)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[CharterBookingWorkflow],
        activities=wiring.activities(settings, aws, http),
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(settings)
    with ThreadPoolExecutor(max_workers=64) as executor:
        worker = build_worker(client, settings, executor)
        log.info("worker polling task queue %s", settings.task_queue)
        async with worker:
            await stop.wait()
        log.info("worker stopped")
