"""One embedded local stack (Temporal dev server, moto server, stand-ins, worker, confirmation
endpoint) for the whole session, on free ports, from the same launcher `charters dev` uses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from charters_dev.isolated import QUICK_RETRIES, start_isolated_stack
from charters_dev.stack import DevStack
from charters_dev.stack_config import settings_env
from temporalio.client import Client, WorkflowHandle

from charters import contract
from charters.actions import act, settled
from charters.models import AssignCrew, BookingResult, BookingStatus, CrewMember, Verdict
from charters.settings import Settings
from charters.starter.book import start_booking, validate
from charters.temporal_client import connect
from charters.worker.wiring import AwsClients, aws_clients
from tests.support import eventually, follow_link, mail_for


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    running = start_isolated_stack(tmp_path_factory.mktemp("stack"), **QUICK_RETRIES)
    saved = dict(os.environ)
    os.environ.update(settings_env(running.settings))
    try:
        yield running
    finally:
        running.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def settings(stack: DevStack) -> Settings:
    return stack.settings


@pytest.fixture(scope="session")
def aws(settings: Settings) -> AwsClients:
    return aws_clients(settings)


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[Client]:
    yield await connect(settings)


class Booker:
    """Books test charters and plays the crew, through the same paths users take."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def start(self, data: dict[str, Any]) -> WorkflowHandle[Any, BookingResult]:
        return await start_booking(self.client, self.settings, validate(data))

    async def status(self, workflow_id: str) -> BookingStatus:
        return await self.client.get_workflow_handle(workflow_id).query(
            contract.QUERY_STATUS, result_type=BookingStatus
        )

    async def wait_stage(self, workflow_id: str, stage: str, timeout: float = 60) -> BookingStatus:
        async def check() -> BookingStatus | None:
            current = await self.status(workflow_id)
            return current if current.stage == stage else None

        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"{workflow_id} never reached {stage}: {await self.status(workflow_id)}"
        )

    async def assign(self, workflow_id: str, replaces: str, member: CrewMember) -> Verdict:
        """`charters assign`: `member` takes the seat of `replaces`."""
        change = AssignCrew(replaces=replaces, member=member)
        return await act(self.client, workflow_id, contract.UPDATE_ASSIGN_CREW, change)

    async def wait_blocked(self, workflow_id: str, on: str, timeout: float = 60) -> BookingStatus:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            current = await self.status(workflow_id)
            if current.blocked_on == on:
                return current
            await asyncio.sleep(0.2)
        raise AssertionError(f"{workflow_id} never blocked on {on}")

    async def answer_all(
        self, booking_ref: str, decision: str = "accept", expected: int = 3
    ) -> None:
        """Follow every crew member's magic link for this booking, as crew would."""
        mails = await eventually(
            lambda: (
                [m for m in mail_for(self.settings, booking_ref) if m.magic_links()]
                if len([m for m in mail_for(self.settings, booking_ref) if m.magic_links()])
                >= expected
                else None
            ),
            timeout=60,
            what=f"{expected} crew emails for {booking_ref}",
        )
        for mail in mails:
            response = await asyncio.to_thread(follow_link, mail.magic_links()[decision], decision)
            assert response.status_code == 200, response.text

    async def book_and_confirm(self, data: dict[str, Any]) -> BookingResult:
        handle = await self.start(data)
        await self.answer_all(data["booking_ref"])
        return await settled(handle, 90)


@pytest.fixture(scope="session")
def booker(client: Client, settings: Settings) -> Booker:
    return Booker(client, settings)


@pytest.fixture
async def wf() -> AsyncIterator[Any]:
    """A fresh time-skipping environment with the outside world in memory
    (tests/workflow_harness.py): no stack needed."""
    from tests.workflow_harness import harness

    async with harness() as fresh:
        yield fresh
