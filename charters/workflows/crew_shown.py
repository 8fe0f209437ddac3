"""The crew the guest page and the SCC event name follow the seats. When a member takes another's
seat (`assign`), the main loop puts the new crew on both, side by side, like a reschedule and
never from the handler: a step in flight (the SCC event's creation, the page) finishes first with
the crew it was given, and the refresh then writes the whole current crew to both, so the last
write is the right one. Owns `requests.crew_shown_stale`."""

from __future__ import annotations

from charters.contract import Activity
from charters.models import BookingState, SccUpdateRequest
from charters.workflows.publishing import Publishing
from charters.workflows.steps import StepRunner
from charters.workflows.together import together


def seats(state: BookingState) -> list[tuple[str, str]]:
    """Who the page and the SCC event name: each seat's member id and name."""
    return [(member.id, member.name) for _, member in state.validated.members]


class CrewShown:
    def __init__(self, state: BookingState, steps: StepRunner, publishing: Publishing) -> None:
        self._state = state
        self._steps = steps
        self._publishing = publishing

    def seats_changed(self) -> None:
        self._state.requests.crew_shown_stale = True

    @property
    def stale(self) -> bool:
        return self._state.requests.crew_shown_stale

    async def apply(self) -> None:
        """Both, side by side; a seat that changes while they run asks for another refresh."""
        self._state.requests.crew_shown_stale = False
        await together(self._update_scc(), self._publishing.publish())

    async def _update_scc(self) -> None:
        event_id = self._state.effects.event_id
        if not event_id:
            return
        update = SccUpdateRequest(
            event_id=event_id,
            status="scheduled" if self._state.round == 1 else "rescheduled",
            charter=self._state.validated.crew_view(self._state.guest_page_url),
        )
        await self._steps.run(
            "scc_event",
            Activity.UPDATE_SCC_EVENT,
            update,
            skippable="the SCC event keeps naming the crew it had",
        )
