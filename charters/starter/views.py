"""Renderings of a booking's status, the booking list and a result: Rich for the terminal,
plain dicts for `--json`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter

from charters.models import BookingResult, BookingStatus

STATE_STYLE = {
    "done": "green",
    "running": "cyan",
    "failed": "red",
    "blocked": "red",
    "pending": "dim",
    "compensated": "magenta",
    "cancelled": "magenta",
    "skipped": "dim",
}


class Retry(BaseModel):
    """An activity the server is retrying: what the workflow's status alone cannot show."""

    activity: str
    attempt: int
    last_error: str | None
    next_attempt_at: datetime | None


async def pending_retries(raw_description: Any, converter: DataConverter) -> list[Retry]:
    """From `describe()`'s pending activities: those past their first attempt, or failed. The
    last failure is decoded with the client's converter (history failures are encrypted)."""
    found = []
    for act in raw_description.pending_activities:
        message = ""
        if act.HasField("last_failure"):
            failure = Failure()
            failure.CopyFrom(act.last_failure)
            try:
                message = str(await converter.decode_failure(failure))
            except Exception:  # noqa: BLE001 - an undecodable failure still shows its envelope
                message = act.last_failure.message
        if act.attempt <= 1 and not message:
            continue
        due = (
            act.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
            if act.HasField("next_attempt_schedule_time")
            else None
        )
        found.append(
            Retry(
                activity=act.activity_type.name,
                attempt=act.attempt,
                last_error=" ".join(message.split())[:200] or None,
                next_attempt_at=due,
            )
        )
    return found


def settle_closed(
    status: BookingStatus, running: bool, failure: str | None = None
) -> BookingStatus:
    """A closed workflow runs nothing: a step it left `running` was cancelled, a `pending` one
    skipped, whatever its last status snapshot says; one that failed or was terminated shows
    `failed` with the cause (`failure`), whatever stage it had reached."""
    if running:
        return status
    if failure is not None:
        status = status.model_copy(
            update={"stage": "failed", "outcome": "failed", "error": status.error or failure}
        )
    steps = {
        step: ("cancelled" if state == "running" else state) for step, state in status.steps.items()
    }
    steps = {step: ("skipped" if state == "pending" else state) for step, state in steps.items()}
    return status.model_copy(update={"steps": steps})


def status_json(status: BookingStatus, retries: list[Retry], ui_link: str) -> dict[str, Any]:
    data = status.model_dump(mode="json", exclude={"charter"})
    data["retries"] = [r.model_dump(mode="json") for r in retries]
    data["web_ui"] = ui_link
    return data


def show_status(
    console: Console, status: BookingStatus, ui_link: str, retries: list[Retry] | None = None
) -> None:
    title = f"{status.workflow_id} · stage [bold]{status.stage}[/bold]"
    steps = Table.grid(padding=(0, 2))
    for step, state in status.steps.items():
        steps.add_row(step, f"[{STATE_STYLE.get(state, 'white')}]{state}[/]")
    texted = any(answer.sms for answer in status.crew)
    crew = Table("crew", "role", "answer", "by", *(["sms"] if texted else []), box=None)
    for answer in status.crew:
        style = {"accepted": "green", "declined": "red", "replaced": "dim"}.get(
            answer.answer, "yellow"
        )
        sms_style = {"sent": "green", "blocked": "red"}.get(answer.sms or "", "yellow")
        crew.add_row(
            answer.name,
            answer.role,
            f"[{style}]{answer.answer}[/]",
            answer.by or "",
            *([f"[{sms_style}]{answer.sms}[/]" if answer.sms else ""] if texted else []),
        )
    console.print(Panel(steps, title=title, expand=False))
    if status.crew:
        console.print(crew)
    now = datetime.now(UTC)
    for retry in retries or []:
        due = ""
        if retry.next_attempt_at:
            wait = max((retry.next_attempt_at - now).total_seconds(), 0)
            due = f", next attempt {retry.next_attempt_at:%H:%M:%S} UTC (in {wait:.0f}s)"
        console.print(
            f"[yellow]retrying {retry.activity}[/]: attempt {retry.attempt}{due}",
            highlight=False,
        )
        if retry.last_error:
            console.print(f"  last error: {retry.last_error}", highlight=False, markup=False)
    blocks = [(b.on, b.reason, b.fix) for b in status.blocks]
    if not blocks and status.blocked_on:
        blocks = [(status.blocked_on, status.blocked_reason or "", status.blocked_fix or "")]
    for on, reason, fix in blocks:
        console.print(f"[bold yellow]Blocked on {escape(on)}:[/] {escape(reason)}", highlight=False)
        if fix:
            console.print(f"  to resolve: {fix}", markup=False, highlight=False, soft_wrap=True)
    for note in status.notes[-5:]:
        console.print(f"[dim]· {escape(note)}[/]", highlight=False)
    if status.error:
        console.print(f"[bold red]{status.error}[/]")
    console.print(f"Web UI: {ui_link}")


def list_rows(workflows: list[Any]) -> list[dict[str, Any]]:
    """One plain row per workflow from the visibility store, for the table and `--json`."""
    rows = []
    for wf in workflows:
        attrs = {k.name: v for k, v in wf.typed_search_attributes}
        charter_at = attrs.get("CharterDate")
        rows.append(
            {
                "workflow_id": wf.id,
                "booking_ref": attrs.get("BookingRef"),
                "charter_at_utc": charter_at.isoformat() if charter_at else None,
                "stage": attrs.get("BookingStage"),
                "blocked_on": attrs.get("BlockedOn"),
                "crew_pending": attrs.get("CrewPending"),
                "status": wf.status.name.lower() if wf.status else None,
            }
        )
    return rows


def list_table(rows: list[dict[str, Any]]) -> Table:
    """Fits 80 columns: the id never shrinks (operators copy it); the booking ref is inside the
    id, so it is left out; the rest fold or shorten."""
    table = Table(box=None, pad_edge=False, padding=(0, 1))
    table.add_column("workflow", no_wrap=True, min_width=8)
    table.add_column("charter UTC", no_wrap=True)
    table.add_column("stage", overflow="fold")
    table.add_column("blocked", overflow="fold", max_width=16)
    table.add_column("crew?", justify="right", no_wrap=True)
    table.add_column("status", overflow="fold", max_width=9)
    for row in rows:
        when = (row["charter_at_utc"] or "")[:16].replace("T", " ")
        table.add_row(
            row["workflow_id"],
            when[2:] if when else "",
            row["stage"] or "",
            row["blocked_on"] or "",
            "" if row["crew_pending"] is None else str(row["crew_pending"]),
            row["status"] or "",
        )
    return table


def show_result(console: Console, result: BookingResult) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_row("outcome", f"[bold]{result.outcome}[/]")
    table.add_row("calendar entry", result.calendar_entry_id or "-")
    table.add_row("SCC event", result.scc_event_id or "-")
    table.add_row("guest page", f"{result.guest_page_url}  (s3 key {result.guest_page_key})")
    table.add_row("invalidations", ", ".join(result.invalidation_ids) or "-")
    table.add_row("crew emails", ", ".join(f"{k}={v}" for k, v in result.crew_email_ids.items()))
    table.add_row("captain summary", result.captain_summary_email_id or "-")
    table.add_row(
        "confirmations",
        ", ".join(
            f"{a.name}: {a.answer}" + (f" ({a.by})" if a.by and a.by != "crew" else "")
            for a in result.confirmations
        ),
    )
    console.print(Panel(table, title=f"Result of {result.workflow_id}", expand=False))
