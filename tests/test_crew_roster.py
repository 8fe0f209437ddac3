"""The crew roster: `charters crew` refuses bad input with one line and an exit code, as an
operator's shell runs it against the local stack; a booking naming crew by id is filled in from
the roster by the `validate_booking` activity (through the worker's wiring), and an unknown or
retired id fails validation naming it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from charters_dev.stack_config import settings_env
from temporalio.exceptions import ApplicationError

from charters import errors
from charters.models import Booking
from charters.settings import Settings
from charters.starter.failures import Exit
from charters.worker import wiring
from tests.support import attempt, booking_data, new_ref, write_booking
from tests.test_cli_errors import assert_one_line, charters


@pytest.fixture(scope="module")
def env(settings: Settings) -> dict[str, str]:
    return settings_env(settings)


@pytest.fixture(scope="module")
def validate(settings: Settings) -> Callable[[dict[str, Any]], Booking]:
    built = wiring.activities(settings, wiring.aws_clients(settings), wiring.http_client())
    act = next(fn for fn in built if fn.__name__ == "validate_booking")
    return lambda raw: attempt(settings.activity_timeout_seconds).run(act, raw)


def uid(prefix: str) -> str:
    return f"{prefix}-{new_ref('R').lower()}"


def add(env: dict[str, str], member_id: str, *extra: str) -> None:
    shown = charters(env, "crew", "add", member_id, *extra)
    assert shown.returncode == 0, shown.stderr


def show(env: dict[str, str], member_id: str) -> dict[str, Any]:
    shown = charters(env, "crew", "show", member_id, "--json")
    assert shown.returncode == 0, shown.stderr
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


GOOD = ["--name", "Casey Morgan", "--email", "casey@sailjada.com", "--rate", "25.00"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--name", "Casey", "--email", "casey@", "--rate", "25"], "email"),
        ([*GOOD, "--phone", "619-555-0100"], "phone"),
        ([*GOOD, "--sms"], "sms needs a phone"),
        (["--name", "Casey", "--email", "c@sailjada.com", "--rate", "twenty"], "hourly_rate"),
        ([*GOOD, "--role", "deckhand"], "roles"),
    ],
)
def test_crew_add_refuses_bad_input_naming_the_field(
    env: dict[str, str], args: list[str], field: str
) -> None:
    member_id = uid("bad")
    assert_one_line(charters(env, "crew", "add", member_id, *args), Exit.USAGE, field)
    assert_one_line(charters(env, "crew", "show", member_id), Exit.UNKNOWN_WORKFLOW, member_id)


def test_crew_commands_refuse_a_taken_or_unknown_id(env: dict[str, str]) -> None:
    member_id = uid("casey")
    add(env, member_id, *GOOD)
    assert_one_line(charters(env, "crew", "add", member_id, *GOOD), Exit.EXISTS, member_id)
    for command in (["show", "nobody-x"], ["retire", "nobody-x"], ["update", "nobody-x"]):
        assert_one_line(charters(env, "crew", *command), Exit.UNKNOWN_WORKFLOW, "nobody-x")
    assert_one_line(
        charters(env, "crew", "update", member_id, "--phone", "+1 619"), Exit.USAGE, "phone"
    )


def test_crew_add_update_retire_and_list(env: dict[str, str]) -> None:
    member_id = uid("robin")
    add(env, member_id, *GOOD, "--phone", "+16195550142", "--sms", "--role", "captain")
    assert show(env, member_id) == {
        "id": member_id,
        "name": "Casey Morgan",
        "email": "casey@sailjada.com",
        "phone": "+16195550142",
        "hourly_rate": "25.00",
        "roles": ["captain"],
        "channels": ["email", "sms"],
        "active": True,
    }
    assert charters(env, "crew", "update", member_id, "--rate", "30").returncode == 0
    assert show(env, member_id)["hourly_rate"] == "30.00"
    assert charters(env, "crew", "retire", member_id).returncode == 0
    listed = charters(env, "crew", "list", "--json")
    assert member_id not in {m["id"] for m in json.loads(listed.stdout)}
    everyone = charters(env, "crew", "list", "--all", "--json")
    assert {m["id"]: m["active"] for m in json.loads(everyone.stdout)}[member_id] is False


def test_crew_import_checks_every_row_before_writing_any(
    env: dict[str, str], tmp_path: Path
) -> None:
    first, second = uid("imp"), uid("imp")
    bad = tmp_path / "crew.csv"
    bad.write_text(
        "id,name,email,phone,hourly_rate,roles,channels\n"
        f"{first},Ana Ruiz,ana@sailjada.com,+16195550150,25,crew,email;sms\n"
        f"{second},Bo Chen,bo@sailjada.com,6195550151,25,crew,email\n"
    )
    assert_one_line(charters(env, "crew", "import", str(bad)), Exit.USAGE, "row 3", "phone")
    assert_one_line(charters(env, "crew", "show", first), Exit.UNKNOWN_WORKFLOW)

    bad.write_text(bad.read_text().replace(",6195550151,", ",+16195550151,"))
    shown = charters(env, "crew", "import", str(bad))
    assert shown.returncode == 0 and "2 added" in shown.stdout, shown.stderr
    assert show(env, first)["channels"] == ["email", "sms"]
    yaml_file = tmp_path / "crew.yaml"
    yaml_file.write_text(
        f"crew:\n  - id: {second}\n    name: Bo Chen\n    email: bo@sailjada.com\n"
        "    hourly_rate: 27.50\n    roles: [crew, captain]\n"
    )
    shown = charters(env, "crew", "import", str(yaml_file))
    assert shown.returncode == 0 and "1 replaced" in shown.stdout, shown.stderr
    assert show(env, second)["roles"] == ["captain", "crew"]
    assert show(env, second)["hourly_rate"] == "27.50"


def roster_booking(env: dict[str, str]) -> tuple[dict[str, Any], str, str]:
    captain, deckhand = uid("captain-id"), uid("crew-id")
    add(env, captain, "--name", "Sam Harbor", "--email", "sam@sailjada.com", "--rate", "50")
    both = ["--role", "captain", "--role", "crew"]
    assert charters(env, "crew", "update", captain, *both).returncode == 0
    add(
        env,
        deckhand,
        "--name",
        "Alex Rivera",
        "--email",
        "alex@sailjada.com",
        "--rate",
        "25",
        "--phone",
        "+16195550160",
        "--sms",
    )
    data = booking_data(new_ref("R"), captain=captain, crew=[deckhand, {"id": captain}])
    return data, captain, deckhand


def test_a_booking_naming_crew_by_id_is_filled_in_from_the_roster(
    env: dict[str, str], validate: Callable[[dict[str, Any]], Booking]
) -> None:
    data, captain, deckhand = roster_booking(env)
    with pytest.raises(ApplicationError, match="ids must be unique"):
        validate(data)  # the captain named twice
    data["crew"] = [deckhand]
    booking = validate(data)
    assert booking.captain.id == captain and booking.captain.email == "sam@sailjada.com"
    assert str(booking.captain.hourly_rate) == "50.00"
    member = booking.crew[0]
    assert (member.name, member.phone, member.sms) == ("Alex Rivera", "+16195550160", True)
    assert booking.crew_view("https://x/g/s").model_dump_json().count("+1619") == 0

    snapshot = booking.model_dump(mode="json")
    assert charters(env, "crew", "update", deckhand, "--rate", "40").returncode == 0
    assert booking.model_dump(mode="json") == snapshot  # what the workflow keeps
    assert str(validate(data).crew[0].hourly_rate) == "40.00"  # only a new validation reads it


def test_an_unknown_or_retired_id_fails_validation_naming_it(
    env: dict[str, str], validate: Callable[[dict[str, Any]], Booking]
) -> None:
    data, captain, deckhand = roster_booking(env)
    data["crew"] = ["crew-id-nobody"]
    with pytest.raises(ApplicationError) as raised:
        validate(data)
    assert raised.value.type == errors.INVALID_BOOKING and raised.value.non_retryable
    assert raised.value.message == (
        "invalid booking: crew.0: no crew member 'crew-id-nobody' on the roster "
        "(see `charters crew list`)"
    )
    data["crew"] = [deckhand]
    assert charters(env, "crew", "retire", deckhand).returncode == 0
    with pytest.raises(ApplicationError, match=f"crew.0: crew member '{deckhand}' is retired"):
        validate(data)
    data["crew"], data["captain"] = [], deckhand
    with pytest.raises(ApplicationError, match=f"captain: crew member '{deckhand}' is retired"):
        validate(data)


def test_charters_book_refuses_an_unknown_roster_id_or_brand_in_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = booking_data(new_ref("R"), captain="captain-id-nobody")
    shown = charters(env, "book", str(write_booking(tmp_path, data)))
    assert_one_line(shown, Exit.USAGE, "captain: no crew member 'captain-id-nobody'")
    data = booking_data(new_ref("R"), brand="other.example")
    shown = charters(env, "book", str(write_booking(tmp_path, data)))
    assert_one_line(shown, Exit.USAGE, "brand: 'other.example' is not a configured brand")


def test_assign_takes_a_roster_id_and_refuses_an_unknown_one(env: dict[str, str]) -> None:
    shown = charters(env, "assign", "charter-NOSUCH1", "crew-1", "crew-id-nobody")
    assert_one_line(shown, Exit.UNKNOWN_WORKFLOW, "no crew member 'crew-id-nobody'")
