"""Runs moto in server mode for the local stack.

One workaround: moto's `/moto-api/data.json` (where the stack reads the mail SES has sent)
serialises every attribute of every model, and without a Docker engine the Lambda model's
`docker_client` property raises, which turns the whole answer into a 500. Our Lambda is
configuration only (never invoked), so that property is made to answer None."""

from __future__ import annotations

import sys

from moto.awslambda.models import LambdaFunction
from moto.server import main

LambdaFunction.docker_client = property(lambda self: None)  # type: ignore[assignment,method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
