"""Rich renderings of a booking's status and result for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from charters.models import BookingResult, BookingStatus

STATE_STYLE = {
    "done": "green",
    "running": "cyan",
    "retrying": "yellow",
    "failed": "red",
    "pending": "dim",
    "compensated": "magenta",
    "skipped": "dim",
}


def show_status(console: Console, status: BookingStatus, ui_link: str) -> None:
    title = f"{status.workflow_id} · stage [bold]{status.stage}[/bold]"
    steps = Table.grid(padding=(0, 2))
    for step, state in status.steps.items():
        steps.add_row(step, f"[{STATE_STYLE.get(state, 'white')}]{state}[/]")
    crew = Table("crew", "role", "answer", "by", box=None)
    for answer in status.crew:
        style = {"accepted": "green", "declined": "red", "replaced": "dim"}.get(
            answer.answer, "yellow"
        )
        crew.add_row(answer.name, answer.role, f"[{style}]{answer.answer}[/]", answer.by or "")
    console.print(Panel(steps, title=title, expand=False))
    if status.crew:
        console.print(crew)
    if status.blocked_on:
        console.print(f"[bold yellow]Blocked on {status.blocked_on}:[/] {status.blocked_reason}")
    if status.error:
        console.print(f"[bold red]{status.error}[/]")
    console.print(f"Web UI: {ui_link}")


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
