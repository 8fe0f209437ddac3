"""The local stack's launcher: one stack per state dir, and a clear refusal to fight another."""

from __future__ import annotations

import pytest
from charters_dev.stack import DevStack
from typer.testing import CliRunner

from charters.settings import Settings
from charters.starter.cli import app


def test_second_dev_reports_the_running_stack(stack: DevStack, settings: Settings) -> None:
    assert DevStack.running(settings) is not None
    shown = CliRunner().invoke(app, ["dev"], env={"CHARTERS_STATE_DIR": str(settings.state_dir)})
    assert shown.exit_code == 0
    assert "already runs" in shown.output


def test_a_stack_on_busy_ports_refuses_to_start(settings: Settings, tmp_path: object) -> None:
    other = settings.model_copy(update={"state_dir": tmp_path})
    with pytest.raises(RuntimeError, match="ports already in use"):
        DevStack(other).start()
