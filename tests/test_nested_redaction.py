"""Revenue anywhere in an SCC item (nested maps and lists, strings and numbers) is removed, and
the rest of the item is left as it was: as a property, and through the activity on moto."""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import ActivityEnvironment

from charters.activities.scc_store import SccStoreActivities
from charters.models import RedactionRequest
from charters.redaction import redact_attribute, redact_item_field
from tests.aws_moto import client, moto_url, settings_for
from tests.test_properties import amounts, formats, visible_amounts

__all__ = ["moto_url"]
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.text(alphabet=string.ascii_letters + " .,:-", max_size=20)
keys = st.sampled_from(["notes", "crew", "details", "items", "meta", "place", "who"])
leaf = st.one_of(
    words.map(lambda s: {"S": s}),
    st.integers(0, 50).map(lambda n: {"N": str(n)}),
    st.booleans().map(lambda b: {"BOOL": b}),
)
trees = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: {"L": xs}),
        st.dictionaries(keys, inner, max_size=4).map(lambda d: {"M": d}),
    ),
    max_leaves=20,
)


def plant(tree: dict[str, Any], revenue: dict[str, Any], path: list[int]) -> dict[str, Any]:
    """`tree` with `revenue` added somewhere down (the path picks the branch at each level)."""
    if "L" in tree:
        items = list(tree["L"])
        inner = [i for i, v in enumerate(items) if "L" in v or "M" in v]
        if inner and path:
            i = inner[path[0] % len(inner)]
            items[i] = plant(items[i], revenue, path[1:])
        else:
            items.append(revenue)
        return {"L": items}
    if "M" in tree:
        entries = dict(tree["M"])
        inner_keys = sorted(k for k, v in entries.items() if "L" in v or "M" in v)
        if inner_keys and path:
            k = inner_keys[path[0] % len(inner_keys)]
            entries[k] = plant(entries[k], revenue, path[1:])
        else:
            entries["planted"] = revenue
        return {"M": entries}
    return {"L": [tree, revenue]}


def revenue_value(amount: Decimal, how: int, shown: int) -> dict[str, Any]:
    text = formats(amount)[shown % len(formats(amount))]
    shapes: list[dict[str, Any]] = [
        {"S": f"Trip total {text} paid"},
        {"N": f"{amount:.2f}"},
        {"M": {"gross": {"N": f"{amount:.2f}"}, "v": {"S": f"Revenue: {text}"}}},
        {"M": {"net_total": {"S": text}, "v": {"L": [{"S": text}]}}},
    ]
    return shapes[how]


def leaves(value: dict[str, Any]) -> list[tuple[str, str]]:
    if "L" in value:
        return [x for v in value["L"] for x in leaves(v)]
    if "M" in value:
        return [x for v in value["M"].values() for x in leaves(v)]
    return [(k, str(v)) for k, v in value.items()]


def map_keys(value: dict[str, Any]) -> list[str]:
    if "L" in value:
        return [k for v in value["L"] for k in map_keys(v)]
    if "M" in value:
        return [*value["M"], *(k for v in value["M"].values() for k in map_keys(v))]
    return []


@PROPS
@given(
    tree=trees,
    amount=amounts,
    how=st.integers(0, 3),
    shown=st.integers(0, 4),
    path=st.lists(st.integers(0, 5), max_size=5),
)
def test_nested_revenue_is_redacted_at_any_depth(
    tree: dict[str, Any], amount: Decimal, how: int, shown: int, path: list[int]
) -> None:
    item = plant(tree, revenue_value(amount, how, shown), path)
    clean = redact_item_field("details", item, [amount])
    assert clean is not None
    for kind, text in leaves(clean):
        if kind == "N":
            assert Decimal(text) != amount, clean
        if kind == "S":
            assert visible_amounts(text, amount) == [], clean
    assert not {"gross", "net_total"} & set(map_keys(clean))


@PROPS
@given(tree=trees, amount=amounts)
def test_an_item_without_revenue_is_left_exactly_as_it_was(
    tree: dict[str, Any], amount: Decimal
) -> None:
    assume_no_amount = all(kind != "N" or Decimal(text) != amount for kind, text in leaves(tree))
    if assume_no_amount:
        assert redact_attribute(tree, [amount]) == tree


def test_the_activity_cleans_a_nested_item_in_dynamodb(
    moto_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = settings_for(moto_url, tmp_path_factory.mktemp("redact"))
    ddb = client(settings, "dynamodb")
    ddb.create_table(
        TableName="scc-events-nested",
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    crew = {"M": {"jordan": {"S": "Jordan (deckhand)"}}}
    ddb.put_item(
        TableName="scc-events-nested",
        Item={
            "event_id": {"S": "ev-1"},
            "notes": {"S": "Guest: Smith | Party of 6"},
            "crew_names": crew,
            "details": {
                "M": {
                    "money": {"M": {"gross": {"N": "840.75"}, "memo": {"S": "paid $840.75"}}},
                    "history": {"L": [{"S": "booked"}, {"S": "Revenue: $589.41"}]},
                }
            },
            "revenue": {"M": {"net": {"N": "589.41"}}},
        },
    )
    acts = SccStoreActivities(ddb, "scc-events-nested")
    req = RedactionRequest(event_id="ev-1", amounts=[Decimal("840.75"), Decimal("589.41")])
    first = ActivityEnvironment().run(acts.redact_scc_revenue, req)
    assert first.changed and sorted(first.fields) == ["details", "revenue"]
    item = ddb.get_item(TableName="scc-events-nested", Key={"event_id": {"S": "ev-1"}})["Item"]
    assert "revenue" not in item and item["crew_names"] == crew
    assert "840" not in str(item) and "589" not in str(item)
    assert item["details"]["M"]["history"]["L"][0] == {"S": "booked"}
    again = ActivityEnvironment().run(acts.redact_scc_revenue, req)
    assert not again.changed
