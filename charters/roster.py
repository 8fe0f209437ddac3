"""The crew roster: one DynamoDB item per person (id, contact, pay rate, roles, channels,
active). A booking may name crew by id; validation copies the roster's details into the booking,
so a later roster change alters no running booking."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from botocore.exceptions import ClientError
from pydantic import Field, ValidationError, field_validator, model_validator

from charters.models.booking import (
    CENT,
    CrewMember,
    Email,
    MemberId,
    Money,
    Name,
    Phone,
    Role,
    Strict,
    describe_validation_error,
)

Channel = Literal["email", "sms"]


class RosterError(ValueError):
    """A roster reference or entry that cannot be used; the message names the field."""


class UnknownMember(RosterError):
    pass


class MemberExists(RosterError):
    pass


class RosterMember(Strict):
    """A person on the roster. Email is every member's channel of record; `sms` in `channels` is
    the opt-in to texts as well, and needs a phone."""

    id: MemberId
    name: Name
    email: Email
    phone: Phone | None = None
    hourly_rate: Money
    roles: list[Role] = Field(default_factory=lambda: list[Role](["crew"]), min_length=1)
    channels: list[Channel] = Field(default_factory=lambda: list[Channel](["email"]), min_length=1)
    active: bool = True

    @field_validator("hourly_rate")
    @classmethod
    def _cents(cls, value: Decimal) -> Decimal:
        return value.quantize(CENT)

    @field_validator("roles", "channels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _channels(self) -> RosterMember:
        if "email" not in self.channels:
            raise ValueError("channels: email is required (SMS goes in addition to it)")
        if "sms" in self.channels and self.phone is None:
            raise ValueError("channels: sms needs a phone number (E.164, e.g. +16195550100)")
        return self

    def as_member(self) -> CrewMember:
        """The booking's snapshot of this person."""
        return CrewMember(
            id=self.id,
            name=self.name,
            email=self.email,
            hourly_rate=self.hourly_rate,
            phone=self.phone,
            sms="sms" in self.channels,
        )


def parse_member(data: dict[str, Any], where: str = "crew member") -> RosterMember:
    try:
        return RosterMember.model_validate(data)
    except ValidationError as exc:
        raise RosterError(f"invalid {where}: {describe_validation_error(exc)}") from None


def _to_item(member: RosterMember) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": {"S": member.id},
        "name": {"S": member.name},
        "email": {"S": member.email},
        "hourly_rate": {"S": str(member.hourly_rate)},  # text: money is never a float
        "roles": {"SS": list(member.roles)},
        "channels": {"SS": list(member.channels)},
        "active": {"BOOL": member.active},
    }
    if member.phone:
        item["phone"] = {"S": member.phone}
    return item


def _from_item(item: dict[str, Any]) -> RosterMember:
    return RosterMember(
        id=item["id"]["S"],
        name=item["name"]["S"],
        email=item["email"]["S"],
        phone=item["phone"]["S"] if "phone" in item else None,
        hourly_rate=Decimal(item["hourly_rate"]["S"]),
        roles=sorted(item["roles"]["SS"]),  # type: ignore[arg-type]
        channels=sorted(item["channels"]["SS"]),  # type: ignore[arg-type]
        active=bool(item["active"]["BOOL"]),
    )


class CrewRoster:
    """The roster table (`CHARTERS_CREW_TABLE`, key `id`). Writes are conditional so `add`
    never overwrites and `update`/`retire` never create."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self.table = table

    def get(self, member_id: str) -> RosterMember | None:
        item = self._ddb.get_item(
            TableName=self.table, Key={"id": {"S": member_id}}, ConsistentRead=True
        ).get("Item")
        return _from_item(item) if item else None

    def add(self, member: RosterMember) -> None:
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item=_to_item(member),
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise MemberExists(
                    f"id: crew member {member.id!r} is already on the roster "
                    "(change them with `charters crew update`)"
                ) from None
            raise

    def put(self, member: RosterMember) -> bool:
        """Creates or replaces; True when the member was new."""
        answer = self._ddb.put_item(
            TableName=self.table, Item=_to_item(member), ReturnValues="ALL_OLD"
        )
        return "Attributes" not in answer

    def replace(self, member: RosterMember) -> None:
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item=_to_item(member),
                ConditionExpression="attribute_exists(id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise UnknownMember(unknown_text(member.id)) from None
            raise

    def members(self, include_retired: bool = False) -> Iterator[RosterMember]:
        for page in self._ddb.get_paginator("scan").paginate(TableName=self.table):
            for item in page.get("Items", []):
                member = _from_item(item)
                if include_retired or member.active:
                    yield member


def unknown_text(member_id: str) -> str:
    return f"no crew member {member_id!r} on the roster (see `charters crew list`)"


def _reference(value: Any) -> str | None:
    """The id of a member named by id only (`captain-1` or `{id: captain-1}`), else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"id"} and isinstance(value["id"], str):
        return str(value["id"])
    return None


def resolve_members(raw: dict[str, Any], roster: CrewRoster) -> dict[str, Any]:
    """The booking with every crew member and captain named by id replaced by the roster's
    details (inline members are left as written). An unknown id, a retired member, or one
    without the seat's role is a RosterError naming the field."""
    data = copy.deepcopy(raw)
    seats: list[tuple[str, Role, Any, Any]] = []
    if "captain" in data:
        seats.append(("captain", "captain", data, "captain"))
    crew = data.get("crew")
    if isinstance(crew, list):
        seats += [(f"crew.{i}", "crew", crew, i) for i in range(len(crew))]
    for field, role, holder, key in seats:
        member_id = _reference(holder[key])
        if member_id is None:
            continue
        found = roster.get(member_id)
        if found is None:
            raise UnknownMember(f"{field}: {unknown_text(member_id)}")
        if not found.active:
            raise RosterError(f"{field}: crew member {member_id!r} is retired from the roster")
        if role not in found.roles:
            raise RosterError(
                f"{field}: {member_id!r} is not on the roster as {role} "
                f"(roles: {', '.join(found.roles)})"
            )
        holder[key] = found.as_member().model_dump(mode="json")
    return data


def read_import_file(path: Path) -> list[RosterMember]:
    """Roster entries from YAML/JSON (a list, or `{crew: [...]}`) or CSV (a header row: id,
    name, email, phone, hourly_rate, roles, channels, active; lists separated by `;`). Every
    entry is checked before any is written; the first bad one is named by row and field."""
    text = path.read_text()
    rows: list[tuple[str, dict[str, Any]]]
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = [(f"row {n}", _csv_row(row)) for n, row in enumerate(reader, start=2)]
    else:
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise RosterError(
                f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}"
            ) from None
        if isinstance(data, dict) and isinstance(data.get("crew"), list):
            data = data["crew"]
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise RosterError(f"{path}: a list of crew members (or `crew:` holding one)")
        rows = [(f"entry {n}", dict(item)) for n, item in enumerate(data, start=1)]
    if not rows:
        raise RosterError(f"{path}: no crew members in it")
    members = [parse_member(row, f"{path.name} {where}") for where, row in rows]
    ids = [m.id for m in members]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RosterError(f"{path.name}: id: repeated: {', '.join(repeated)}")
    return members


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    for key in ("roles", "channels"):
        if key in out:
            out[key] = [p.strip() for p in out[key].replace("|", ";").split(";") if p.strip()]
            if not out[key]:
                del out[key]
    for key in ("phone", "active"):
        if out.get(key) == "":
            del out[key]
    if "active" in out:
        out["active"] = out["active"].lower() not in ("false", "no", "0")
    return out
