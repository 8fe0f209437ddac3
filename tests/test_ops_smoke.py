"""`charters ops smoke` against the local stack: every line PASS.

Locally the SES mailbox simulator is played by the fault proxy (charters_dev.ses_simulator:
moto accepts a send to bounce@simulator.amazonses.com and the proxy publishes the bounce SES
would), and guest pages are loaded from the local CloudFront edge (`--guest-site`)."""

from __future__ import annotations

import re
import subprocess
import sys

from charters_dev.ses_simulator import bounce_event, is_bounce_address
from charters_dev.stack import DevStack

from charters.settings import Settings
from charters.starter.smoke import BOUNCING_CREW, smoke_booking

CHECKS = ["worker", "book", "guest page", "confirm link", "bounce", "cancel"]


def test_the_test_charter_uses_only_simulator_addresses() -> None:
    data = smoke_booking()
    people = [data["guest"], data["captain"], *data["crew"]]
    assert all(p["email"].endswith("@simulator.amazonses.com") for p in people)
    bouncing = [c for c in data["crew"] if is_bounce_address(c["email"])]
    assert [c["id"] for c in bouncing] == [BOUNCING_CREW]
    assert data["booking_ref"].startswith("SMOKE") and len(data["booking_ref"]) <= 16


def test_the_local_simulator_bounces_only_the_bounce_address() -> None:
    send = (
        b'{"FromEmailAddress": "b@q.com", "Destination": {"ToAddresses": '
        b'["bounce+x@simulator.amazonses.com"]}, "ConfigurationSetName": "charters", '
        b'"EmailTags": [{"Name": "workflow_id", "Value": "charter-X"}, '
        b'{"Name": "crew_id", "Value": "crew-2"}]}'
    )
    event = bounce_event(send, "m-1")
    assert event is not None
    assert event["mail"]["tags"]["workflow_id"] == ["charter-X"]
    assert event["bounce"]["bounceType"] == "Permanent"
    ok = send.replace(b"bounce+x@", b"success@")
    assert bounce_event(ok, "m-2") is None


def test_smoke_passes_every_line_on_the_local_stack(stack: DevStack, settings: Settings) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "charters",
            "ops",
            "smoke",
            "--guest-site",
            f"http://127.0.0.1:{settings.edge_port}",
            "--timeout",
            "120",
        ],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=settings.state_dir.resolve().parent,
    )
    lines = proc.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [f"PASS {c}" for c in CHECKS], (
        proc.stdout + proc.stderr
    )
    assert proc.returncode == 0
    guest_page = next(line for line in lines if line.startswith("PASS guest page"))
    assert re.search(r"/g/[a-z]{3}-\d{1,2}-smoke\w+ is the branded 404", guest_page), guest_page
