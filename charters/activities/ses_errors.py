"""What an SES `AccessDenied` means, read from its message.

SES authorizes a send against every identity it involves. Out of the sandbox that is the sender's
identity (the domain of CHARTERS_MAIL_FROM) and the configuration set, which the worker's role
is granted. In the sandbox SES also authorizes against each RECIPIENT's identity, so a send to an
address that is not a verified identity is refused as `AccessDenied ... not authorized to
perform ses:SendEmail on resource arn:aws:ses:<region>:<account>:identity/<recipient>` when the
role's policy is scoped to our identities (as infra/charters.yaml's is), and as `MessageRejected:
Email address is not verified` when it is not. The fix is not "grant the worker more": it is the
sandbox procedure (docs/production.md, "SES: the sandbox, then production").
"""

from __future__ import annotations

import re

_IDENTITY = re.compile(r"arn:aws[a-z-]*:ses:[a-z0-9-]+:\d{12}:identity/([^\s`'\"]+)")


def denied_identity(message: str) -> str | None:
    """The SES identity the refusal names (an address or a domain), if it names one."""
    found = _IDENTITY.search(message)
    return found.group(1).rstrip(".") if found else None


def ses_access_denied_fix(message: str) -> str:
    identity = denied_identity(message)
    if identity is not None and "@" in identity:
        return (
            f"SES is in the sandbox and {identity} is not a verified recipient: verify it "
            f"(aws sesv2 create-email-identity --email-identity {identity}) with the stack "
            "parameter SesSandbox=true, or leave the sandbox (request production access); then "
            "resume the step"
        )
    return (
        "grant the worker's role ses:SendEmail on the identity of CHARTERS_MAIL_FROM and on "
        "CHARTERS_SES_CONFIGURATION_SET"
    )
