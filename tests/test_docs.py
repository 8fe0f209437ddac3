"""The README's settings table and the Settings model do not drift apart."""

from __future__ import annotations

from pathlib import Path

from charters.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [n for n in Settings.model_fields if f"`CHARTERS_{n.upper()}`" not in README]
    assert missing == []


def test_readme_opens_with_the_two_commands() -> None:
    head = README.split("## ", 1)[0]
    assert "make demo" in head and "make test" in head
