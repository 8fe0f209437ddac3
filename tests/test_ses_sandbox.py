"""SES in the sandbox: a recipient that is not a verified identity is refused with `AccessDenied`
(SES authorizes the send against the recipient's identity too, and the worker's role is granted
our identities only), not `MessageRejected`. The step blocks with the sandbox explanation, not
"grant the worker ses:SendEmail", which would send an operator the wrong way; a missing grant on
our own identity keeps the permission fix."""

from __future__ import annotations

from botocore.exceptions import ClientError
from charters_dev.stack import DevStack

from charters import contract, errors
from charters.actions import act, settled
from charters.activities.email import DEFAULT_FIX, FIXES
from charters.activities.ses_errors import denied_identity
from charters.aws_errors import classify
from charters.models import ResolveBlock
from tests.conftest import Booker
from tests.support import booking_data, eventually, mail_for
from tests.test_transient_faults import faults  # noqa: F401 - fixture

JORDAN = "jordan@sailjada.com"
SANDBOX = (
    "User `arn:aws:sts::123456789012:assumed-role/charters-worker/w1' is not authorized to "
    "perform `ses:SendEmail' on resource `arn:aws:ses:us-west-2:123456789012:identity/{who}'"
)


def access_denied(message: str) -> ClientError:
    """The error botocore raises for SES's answer (the shape its parser builds)."""
    return ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "SendEmail",
    )


def test_a_sandbox_recipient_is_explained_as_the_sandbox() -> None:
    failure = classify(access_denied(SANDBOX.format(who=JORDAN)), "SES", FIXES, DEFAULT_FIX, "c2")
    assert failure.type == errors.NEEDS_OPERATOR and failure.non_retryable
    fix = failure.details[0]["fix"]
    assert fix.startswith(f"SES is in the sandbox and {JORDAN} is not a verified recipient")
    assert f"aws sesv2 create-email-identity --email-identity {JORDAN}" in fix
    assert "grant the worker" not in fix


def test_a_missing_grant_on_our_own_domain_keeps_the_permission_fix() -> None:
    failure = classify(
        access_denied(SANDBOX.format(who="queenofsandiego.com")), "SES", FIXES, DEFAULT_FIX
    )
    assert failure.details[0]["fix"].startswith("grant the worker's role ses:SendEmail")
    assert denied_identity("no resource named here") is None


async def test_a_sandbox_refusal_blocks_the_seat_with_the_sandbox_fix(
    faults: DevStack,  # noqa: F811
    booker: Booker,
) -> None:
    settings = booker.settings
    faults.set_faults("aws", f"error=1,kinds=sandbox,match={JORDAN}")
    data = booking_data()
    ref = data["booking_ref"]
    handle = await booker.start(data)
    blocked = await booker.wait_blocked(handle.id, "crew-email", timeout=90)
    assert "AccessDenied" in (blocked.blocked_reason or "")
    assert f"SES is in the sandbox and {JORDAN}" in (blocked.blocked_fix or "")

    faults.set_faults("aws", "")
    verdict = await act(
        booker.client,
        handle.id,
        contract.UPDATE_RESOLVE_BLOCK,
        ResolveBlock(step="crew-email:crew-2", by="dana"),
    )
    assert verdict.recorded, verdict.message
    await eventually(
        lambda: any(m.to == [JORDAN] for m in mail_for(settings, ref)), what="Jordan asked"
    )
    await booker.answer_all(ref)
    assert (await settled(handle, 60)).outcome == "confirmed"
