"""`charters ops smoke`: one test charter through a deployment, each check PASS or FAIL.

Against production it uses SES's mailbox simulator (SES guide, "Using the mailbox simulator"):
every person of the test charter is `success+<who>@simulator.amazonses.com` except one crew
member, `bounce@simulator.amazonses.com`, whose invitation SES answers with a permanent bounce
through the configuration set's event destination. The simulator works in the sandbox too, and
sends to it do not count against the sending quota or reputation.

The checks, in order (a check that cannot run after an earlier failure is FAIL, saying why):
1. `worker`: a worker polls the task queue;
2. `book`: the test charter starts (`charters-SMOKE…`) and reaches the crew stage;
3. `guest page`: its page loads through the guest site (CloudFront) with the booking's reference,
   and its address guessed from the date and reference (`may-30-<ref>`, no token) is the branded
   404;
4. `confirm link`: a crew magic link, signed like the worker's (the magic-link key from Secrets
   Manager: the operator needs GetSecretValue on it), is opened and accepted at the confirm
   endpoint, and the workflow records the answer;
5. `bounce`: the bounce address's seat blocks (`crew-email:<id>`, "does not receive our mail");
6. `cancel`: the booking is cancelled and compensates (calendar, SCC, page, crew told).
"""

from __future__ import annotations

import asyncio
import secrets as random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client

from charters import contract, magic_links
from charters.actions import act, ask
from charters.models import BookingStatus, CancelBooking
from charters.settings import Settings

SIMULATOR = "simulator.amazonses.com"
BOUNCING_CREW = "smoke-crew-2"
CONFIRMING_CREW = "smoke-crew-1"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def smoke_booking(now: datetime | None = None) -> dict[str, Any]:
    """A charter 30 days out whose people are all SES mailbox simulator addresses."""
    ref = "SMOKE" + "".join(random.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(7))
    starts = ((now or datetime.now()) + timedelta(days=30)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    return {
        "booking_ref": ref,
        "starts_at": starts.isoformat(),
        "timezone": "America/Los_Angeles",
        "duration_hours": "2",
        "location": "Smoke test dock",
        "guest": {"name": "Smoke Test", "email": f"success+guest@{SIMULATOR}", "party_size": 2},
        "captain": {
            "id": "smoke-captain",
            "name": "Smoke Captain",
            "email": f"success+captain@{SIMULATOR}",
            "hourly_rate": "50.00",
        },
        "crew": [
            {
                "id": CONFIRMING_CREW,
                "name": "Smoke Crew One",
                "email": f"success+crew1@{SIMULATOR}",
                "hourly_rate": "25.00",
            },
            {
                "id": BOUNCING_CREW,
                "name": "Smoke Crew Two",
                "email": f"bounce@{SIMULATOR}",
                "hourly_rate": "25.00",
            },
        ],
        "money": {"gross": "500.00", "fees": {"boatsetter_fee": "50.00"}},
        "notes": "charters ops smoke: a test charter, cancelled at the end",
    }


async def _until(probe: Callable[[], Awaitable[Any]], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(interval)


@dataclass
class SmokeRun:
    client: Client
    settings: Settings
    magic_key: Callable[[], bytes]
    guest_site: str | None = None
    timeout: float = 120.0
    http_headers: dict[str, str] | None = None

    async def status(self, workflow_id: str) -> BookingStatus | None:
        try:
            handle = self.client.get_workflow_handle(workflow_id)
            return await ask(handle, contract.QUERY_STATUS, BookingStatus)
        except Exception:  # noqa: BLE001 - not queryable yet: the probe asks again
            return None

    async def run(self) -> list[Check]:
        from charters.starter import book as booking_start
        from charters.starter.failures import CliError, require_worker

        checks: list[Check] = []
        try:
            await require_worker(self.client, self.settings)
            checks.append(Check("worker", True, f"a worker polls {self.settings.task_queue}"))
        except CliError as exc:
            checks.append(Check("worker", False, exc.message))
            return checks + self._skipped(
                ["book", "guest page", "confirm link", "bounce", "cancel"]
            )

        data = smoke_booking()
        booking = booking_start.validate(data)
        workflow_id = contract.workflow_id_for(booking.booking_ref)
        await booking_start.start_booking(self.client, self.settings, booking)

        async def asking() -> BookingStatus | None:
            st = await self.status(workflow_id)
            return st if st and st.stage in ("awaiting-crew", "finalizing", "confirmed") else None

        status = await _until(asking, self.timeout)
        if status is None:
            last = await self.status(workflow_id)
            why = f"stage {last.stage if last else '?'}"
            if last and last.blocked_on:
                why += f", blocked on {last.blocked_on}: {last.blocked_reason}"
            checks.append(Check("book", False, f"{workflow_id} never asked the crew ({why})"))
            await self._cancel(workflow_id)
            return checks + self._skipped(["guest page", "confirm link", "bounce", "cancel"])
        checks.append(Check("book", True, f"{workflow_id} is asking its crew"))

        guess = f"{booking.starts_at:%b}-{booking.starts_at.day}-{booking.booking_ref}".lower()
        checks.append(await self._guest_page(status, booking.booking_ref, guess))
        checks.append(await self._confirm_link(workflow_id, status.round))
        checks.append(await self._bounce(workflow_id))
        checks.append(await self._cancel(workflow_id))
        return checks

    @staticmethod
    def _skipped(names: list[str]) -> list[Check]:
        return [Check(n, False, "not run: an earlier check failed") for n in names]

    def _site_url(self, url: str) -> str:
        if not self.guest_site:
            return url
        path = url.split("://", 1)[-1].partition("/")[2]
        return f"{self.guest_site.rstrip('/')}/{path}"

    async def _guest_page(self, status: BookingStatus, ref: str, guess: str) -> Check:
        """The page loads; its address guessed from the date and reference (`guess`) is the
        branded 404, like any missing page."""
        if not status.guest_page_url:
            return Check("guest page", False, "the workflow names no guest page URL")
        url = self._site_url(status.guest_page_url)
        missing = f"{url.rsplit('/', 1)[0]}/{guess}"
        if missing == url:
            return Check("guest page", False, f"{url} can be guessed from the date and reference")
        try:
            async with httpx.AsyncClient(timeout=15, follow_redirects=True) as http:
                page = await _until(
                    lambda: self._get_if(http, url, lambda r: r.status_code == 200), self.timeout
                )
                absent = await http.get(missing)
        except httpx.HTTPError as exc:
            return Check("guest page", False, f"{url}: {type(exc).__name__}: {exc}")
        if page is None:
            return Check("guest page", False, f"{url} did not answer 200 in {self.timeout:.0f} s")
        if ref not in page.text:
            return Check("guest page", False, f"{url} answered 200 without booking {ref}")
        if absent.status_code != 404 or "could not find" not in absent.text:
            return Check(
                "guest page",
                False,
                f"{url} loads, but a missing page answers {absent.status_code}, not the branded "
                "404 (custom error response and `charters ops publish-404`)",
            )
        return Check("guest page", True, f"{url} loads; the guessable {missing} is the branded 404")

    @staticmethod
    async def _get_if(
        http: httpx.AsyncClient, url: str, good: Callable[[httpx.Response], bool]
    ) -> httpx.Response | None:
        answer = await http.get(url)
        return answer if good(answer) else None

    async def _confirm_link(self, workflow_id: str, round_: int) -> Check:
        try:
            key = await asyncio.to_thread(self.magic_key)
        except Exception as exc:  # noqa: BLE001 - reported as the check's failure
            return Check("confirm link", False, f"cannot read the magic-link key: {exc}")
        expires = int(time.time()) + 3600
        token = magic_links.sign(
            key, magic_links.MagicLink(workflow_id, CONFIRMING_CREW, expires, round_)
        )
        url = f"{self.settings.confirm_base_url.rstrip('/')}/c/{token}"
        try:
            async with httpx.AsyncClient(timeout=15, headers=self.http_headers) as http:
                shown = await http.get(url)
                answered = await http.post(url, data={"decision": "accept"})
        except httpx.HTTPError as exc:
            return Check("confirm link", False, f"{url.split('/c/')[0]}: {type(exc).__name__}")
        if shown.status_code != 200 or answered.status_code != 200:
            return Check(
                "confirm link",
                False,
                f"the confirm endpoint answered {shown.status_code} then {answered.status_code}",
            )

        async def recorded() -> bool:
            st = await self.status(workflow_id)
            return st is not None and any(
                c.crew_id == CONFIRMING_CREW and c.answer == "accepted" for c in st.crew
            )

        if not await _until(recorded, 30):
            return Check("confirm link", False, "the page answered, the workflow has no answer")
        return Check("confirm link", True, f"{CONFIRMING_CREW} accepted through the endpoint")

    async def _bounce(self, workflow_id: str) -> Check:
        seat = f"crew-email:{BOUNCING_CREW}"

        async def blocked() -> bool:
            st = await self.status(workflow_id)
            return st is not None and any(b.on == seat for b in st.blocks)

        if not await _until(blocked, self.timeout, interval=2.0):
            return Check(
                "bounce",
                False,
                f"no block on {seat} within {self.timeout:.0f} s: check the configuration set's "
                "event destination, the bounce queue and the worker's bounce listener",
            )
        return Check("bounce", True, f"the simulator's bounce blocked {seat}")

    async def _cancel(self, workflow_id: str) -> Check:
        try:
            verdict = await act(
                self.client,
                workflow_id,
                contract.UPDATE_CANCEL_BOOKING,
                CancelBooking(reason="charters ops smoke: test charter"),
            )
        except Exception as exc:  # noqa: BLE001 - reported as the check's failure
            return Check("cancel", False, f"{type(exc).__name__}: {exc}")
        if not verdict.recorded:
            return Check("cancel", False, verdict.message)

        async def cancelled() -> bool:
            st = await self.status(workflow_id)
            return st is not None and st.outcome == "cancelled"

        if not await _until(cancelled, self.timeout):
            return Check("cancel", False, "accepted, but the booking never reached cancelled")
        return Check("cancel", True, f"{workflow_id} cancelled and compensated")
