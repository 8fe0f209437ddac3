"""A seat changing hands (`assign`), beyond the seat itself (the crew's part): the member taken
off the crew before they declined is told they are no longer needed, and the SCC event and the
guest page are made to name the new crew. Both are done by the main loop, never the handler:
the word to the member is an errand (a refused address holds only that email), and the refresh
runs like a reschedule, so a step in flight (the SCC event's creation, the page) finishes first
with the crew it was given and the refresh then writes the whole current crew to both, side by
side: the last write is the right one. Owns `crew.released` and `requests.crew_shown_stale`."""

from __future__ import annotations

from functools import partial

from charters.models import AssignCrew, BookingState, Released
from charters.workflows.crew import CrewEmail, CrewWaits
from charters.workflows.errands import Errands
from charters.workflows.provisioning import Provisioning
from charters.workflows.publishing import Publishing
from charters.workflows.texts import Texts
from charters.workflows.together import together


def seats(state: BookingState) -> list[tuple[str, str]]:
    """Who the page and the SCC event name: each seat's member id and name."""
    return [(member.id, member.name) for _, member in state.validated.members]


class SeatChanges:
    def __init__(
        self,
        state: BookingState,
        provisioning: Provisioning,
        publishing: Publishing,
        crew: CrewWaits,
        texts: Texts,
        errands: Errands,
    ) -> None:
        self._state = state
        self._provisioning = provisioning
        self._publishing = publishing
        self._crew = crew
        self._texts = texts
        self._errands = errands

    def leaving(self, change: AssignCrew) -> None:
        """Before the seat changes hands: a member who had not declined and was asked is owed
        word that they are off the crew."""
        crew = self._state.crew
        answer = crew.answers[change.replaces]
        asked = crew.asked.get(change.replaces)
        if change.member.id == change.replaces or answer.answer == "declined" or not asked:
            return
        member = next(m for _, m in self._state.validated.members if m.id == change.replaces)
        crew.released.append(Released(member=member, role=answer.role, asked=list(asked)))

    def seats_changed(self) -> None:
        self._state.requests.crew_shown_stale = True

    # ---- what the loop keeps up -------------------------------------------------------------

    def send_releases(self) -> None:
        """Once per member, and only if an invitation of theirs went out (the ledger knows); a
        text too when they were texted one."""
        for released in self._state.crew.released:
            key = f"released:{released.member.id}"
            if not released.done:
                self._errands.start(key, partial(self._release, released))
            self._texts.start_notice(key, released.role, released.member, "released")

    async def _release(self, released: Released) -> None:
        member = released.member
        email = CrewEmail(
            f"released:{member.id}", released.role, member, "released", f"crew-released:{member.id}"
        )
        await self._crew.send(email, only_if_sent=released.asked)
        released.done = True

    @property
    def stale(self) -> bool:
        return self._state.requests.crew_shown_stale

    async def refresh(self) -> None:
        """The SCC event and the page, side by side; a seat that changes while they run asks for
        another refresh."""
        self._state.requests.crew_shown_stale = False
        await together(
            self._provisioning.update_scc_event(
                skippable="the SCC event keeps naming the crew it had"
            ),
            self._publishing.publish(),
        )
