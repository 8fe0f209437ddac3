"""HTTP failures classified. A 401/403 from SCC is "header stripped" only when the configured URL
is a CloudFront domain: an edge-optimized API Gateway answers through CloudFront too, and there a
wrong key must enter the key repair path. SCC and the calendar are played by HTTP stand-ins
answering as each endpoint would."""

from __future__ import annotations

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from charters import errors
from charters.activities.scc import SccActivities, is_cloudfront_url
from charters.activities.secrets import SecretReader


class _Secrets(SecretReader):
    """The key comes from here instead of Secrets Manager (no AWS call in this test)."""

    def __init__(self) -> None:
        pass

    def get(self, secret_id: str) -> str:
        return "wrong-key"


def edge_optimized_api(request: httpx.Request) -> httpx.Response:
    """API Gateway's edge-optimized endpoint refusing the key: the answer carries CloudFront's
    headers, as every answer of an edge-optimized API does."""
    return httpx.Response(
        403,
        json={"message": "Forbidden"},
        headers={"via": "1.1 abc.cloudfront.net (CloudFront)", "x-amz-cf-id": "id=="},
    )


def scc(url: str, hosts: list[str] | None = None) -> SccActivities:
    http = httpx.Client(transport=httpx.MockTransport(edge_optimized_api))
    return SccActivities(http, _Secrets(), url, "X-SCC-Service-Key", "s", cloudfront_hosts=hosts)


def test_a_wrong_key_on_an_edge_optimized_api_enters_the_repair_path() -> None:
    api = scc("https://a1b2c3.execute-api.us-west-2.amazonaws.com/prod")
    with pytest.raises(ApplicationError) as raised:
        api.events_with_key("charter-X")
    assert raised.value.type == errors.SCC_AUTH_REJECTED and not raised.value.non_retryable


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://d111111abcdef8.cloudfront.net/prod", None),
        ("https://api.queenofsandiego.com/prod", ["api.queenofsandiego.com"]),
        ("http://127.0.0.1:8703/prod", ["127.0.0.1:8703"]),
    ],
)
def test_a_cloudfront_url_is_diagnosed_as_header_stripped(url: str, hosts: list[str]) -> None:
    with pytest.raises(ApplicationError) as raised:
        scc(url, hosts).events_with_key("charter-X")
    assert raised.value.type == errors.SCC_HEADER_STRIPPED and raised.value.non_retryable


def test_only_listed_hosts_count() -> None:
    assert not is_cloudfront_url("http://127.0.0.1:8702/prod", ["127.0.0.1:8703"])
    assert not is_cloudfront_url("https://evil-cloudfront.net.example/prod", [])


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (422, False), (429, True)])
def test_a_calendar_answer_no_retry_can_fix_asks_an_operator(status: int, retryable: bool) -> None:
    from charters.activities.calendar import CalendarActivities

    http = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(status)))
    calendar = CalendarActivities(http, _Secrets(), "https://calendar.example", "X-T", "s")
    with pytest.raises(ApplicationError) as raised:
        calendar.entries_with_key("charter-X:calendar", "X")
    assert raised.value.non_retryable is not retryable
    if not retryable:
        assert raised.value.type == errors.NEEDS_OPERATOR
        assert "CHARTERS_CALENDAR_URL" in raised.value.details[0]["fix"]
