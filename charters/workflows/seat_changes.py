"""A seat changing hands (`assign`): the new member takes the seat at once (the next validator
sees them; the crew's part then invites them), the member taken off the crew before they
declined is told they are no longer needed, and the SCC event and the guest page are made to
name the new crew. The last two are done by the main loop, never the handler:
the word to the member is an errand (a refused address holds only that email), and the refresh
runs like a reschedule, so a step in flight (the SCC event's creation, the page) finishes first
with the crew it was given and the refresh then writes the whole current crew to both, side by
side: the last write is the right one. Owns `crew.released` and `requests.crew_shown_stale`."""

from __future__ import annotations

from functools import partial

from temporalio import workflow

from charters import contract
from charters.models import AssignCrew, BookingState, CrewAnswer, Released
from charters.workflows.bookkeeping import Bookkeeping
from charters.workflows.crew import CrewEmail, CrewWaits
from charters.workflows.errands import Errands
from charters.workflows.failures import refuse
from charters.workflows.provisioning import Provisioning
from charters.workflows.publishing import Publishing
from charters.workflows.steps import StepRunner
from charters.workflows.texts import Texts
from charters.workflows.together import together


def seats(state: BookingState) -> list[tuple[str, str]]:
    """Who the page and the SCC event name: each seat's member id and name."""
    return [(member.id, member.name) for _, member in state.validated.members]


class SeatChanges:
    def __init__(
        self,
        state: BookingState,
        steps: StepRunner,
        book: Bookkeeping,
        provisioning: Provisioning,
        publishing: Publishing,
        crew: CrewWaits,
        texts: Texts,
        errands: Errands,
    ) -> None:
        self._state = state
        self._crew_state = state.crew
        self._steps = steps
        self._book = book
        self._provisioning = provisioning
        self._publishing = publishing
        self._crew = crew
        self._texts = texts
        self._errands = errands

    def check(self, change: AssignCrew) -> None:
        self._crew.check_open()
        if self._state.booking is None:
            raise refuse(contract.REFUSED_INVALID, "the booking is not validated yet; try again")
        old = self._crew_state.answers.get(change.replaces)
        if old is None:
            raise refuse(contract.REFUSED_UNKNOWN_MEMBER, f"{change.replaces} is not on this crew")
        if old.answer == "replaced":
            raise refuse(contract.REFUSED_REPLACED, f"{old.name} was already replaced")
        if change.member.id != change.replaces and change.member.id in self._crew_state.answers:
            raise refuse(
                contract.REFUSED_INVALID, f"{change.member.id} is already on this charter's crew"
            )

    def assign(self, change: AssignCrew) -> None:
        """Put the new member in the seat at once; their invitation goes out as an errand. The
        same id with new details (a corrected address after a bounce) re-invites that member."""
        before = seats(self._state)
        self._leaving(change)
        crew = self._crew_state
        booking = self._state.validated
        old = crew.answers[change.replaces]
        same = change.member.id == change.replaces
        if old.role == "captain":
            booking = booking.model_copy(update={"captain": change.member})
        else:
            members = [change.member if m.id == change.replaces else m for m in booking.crew]
            booking = booking.model_copy(update={"crew": members})
        self._state.booking = booking
        self._state.status.charter = booking.crew_view(self._state.guest_page_url)
        if not same:
            old.answer = "replaced"
        crew.answers[change.member.id] = CrewAnswer(
            crew_id=change.member.id, name=change.member.name, role=old.role
        )
        crew.seat_versions[change.member.id] = (
            crew.seat_versions.get(change.member.id, 1) + 1 if same else 1
        )
        crew.version += 1
        if self._state.setup_done:
            crew.invited_at[change.member.id] = workflow.now()
        self._steps.release(f"crew-email:{change.replaces}")
        self._book.unblock(f"crew-email:{change.replaces}")
        self._book.unblock(f"crew-declined:{change.replaces}")
        if seats(self._state) != before:
            self._state.requests.crew_shown_stale = True

    def _leaving(self, change: AssignCrew) -> None:
        """A member who had not declined and was asked is owed word that they are off the crew."""
        crew = self._crew_state
        answer = crew.answers[change.replaces]
        asked = crew.asked.get(change.replaces)
        if change.member.id == change.replaces or answer.answer == "declined" or not asked:
            return
        member = next(m for _, m in self._state.validated.members if m.id == change.replaces)
        crew.released.append(Released(member=member, role=answer.role, asked=list(asked)))

    # ---- what the loop keeps up -------------------------------------------------------------

    def send_releases(self) -> None:
        """Once per member, and only if an invitation of theirs went out (the ledger knows); a
        text too when they were texted one."""
        for released in self._crew_state.released:
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
