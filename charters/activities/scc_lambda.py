"""The SCC Lambda's configuration, through the Lambda API: checks that SERVICE_KEY_HASH matches
the service key, and (when an operator approves) repairs it without touching other variables.

What the Lambda API guarantees and this module relies on (Lambda API reference,
UpdateFunctionConfiguration; "Lambda function states"):
- UpdateFunctionConfiguration replaces the whole environment, so the variables are read and
  written back with the `RevisionId` read: a concurrent deploy in between makes the write fail
  with PreconditionFailedException, and the repair reads again and re-merges (the deploy's change
  survives).
- While `LastUpdateStatus` is `InProgress` a further update fails with ResourceConflictException;
  the repair waits with boto3's `function_updated_v2` waiter (GetFunction) in one-poll steps,
  heartbeating between them, bounded by `wait_seconds`; `Failed` is an error, never "done".
- An API Gateway integration on an alias invokes the alias's version, whose configuration is
  immutable: with a qualifier, the repaired $LATEST is published as a new version and the alias
  moved to it (each with its RevisionId). moto checks none of the RevisionIds and never reports
  InProgress; the tests make it do both (tests/test_scc_lambda_repair.py).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from botocore.exceptions import ClientError, WaiterError
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from charters import errors
from charters.activities.secrets import SecretReader
from charters.aws_errors import aws_errors
from charters.models import SccKeyCheck

HASH_VARIABLE = "SERVICE_KEY_HASH"
WRITE_TRIES = 5
POLL_SECONDS = 1.0
SCC_KEY_NOT_FIXED = "SccKeyHashNotFixed"
FIXES = {
    "ResourceNotFound": "set CHARTERS_SCC_LAMBDA_FUNCTION (and CHARTERS_SCC_LAMBDA_QUALIFIER, "
    "the alias the SCC API invokes) to the SCC Lambda's name",
    "AccessDenied": "grant the worker's role lambda:GetFunction, GetFunctionConfiguration, "
    "UpdateFunctionConfiguration (and PublishVersion, GetAlias, UpdateAlias with a qualifier) "
    "on the function named by CHARTERS_SCC_LAMBDA_FUNCTION",
}
DEFAULT_FIX = "check CHARTERS_SCC_LAMBDA_FUNCTION and the worker's Lambda permissions"


def service_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _beat(detail: str) -> None:
    """Heartbeat when running as an activity (the seeding script calls this module too)."""
    if activity.in_activity():
        activity.heartbeat(detail)


def _variables(config: dict[str, Any]) -> dict[str, str]:
    return dict(config.get("Environment", {}).get("Variables", {}) or {})


def _revision(answer: dict[str, Any]) -> dict[str, str]:
    """The RevisionId to write with. AWS always returns one; moto returns none for functions."""
    return {"RevisionId": answer["RevisionId"]} if answer.get("RevisionId") else {}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _Repair:
    """One repair: every wait shares one deadline, so the attempt ends before its timeout."""

    def __init__(self, client: Any, function: str, wait_seconds: float) -> None:
        self._lambda = client
        self._function = function
        self._deadline = time.monotonic() + wait_seconds
        self._waiter = client.get_waiter("function_updated_v2")

    def wait_updated(self, qualifier: str | None = None) -> None:
        """Waits while LastUpdateStatus is InProgress: one waiter poll at a time (its acceptors:
        Successful = done, Failed = failure, InProgress = poll again), a heartbeat between."""
        target = {"FunctionName": self._function, **({"Qualifier": qualifier} if qualifier else {})}
        while True:
            try:
                self._waiter.wait(**target, WaiterConfig={"Delay": 1, "MaxAttempts": 1})
                return
            except WaiterError as exc:
                answer = exc.last_response or {}
                if "Error" in answer:
                    raise ClientError(answer, "GetFunction") from None
                config = answer.get("Configuration", {})
                if config.get("LastUpdateStatus") == "Failed":
                    raise errors.needs_operator(
                        f"the SCC Lambda's last update failed: "
                        f"{config.get('LastUpdateStatusReason', 'no reason given')}",
                        "fix the function's configuration in the Lambda console (see the "
                        "reason), then retry the step",
                        subject=self._function,
                    ) from None
            if time.monotonic() >= self._deadline:
                raise ApplicationError(
                    "the SCC Lambda is still being updated (LastUpdateStatus=InProgress); "
                    "the next attempt waits again",
                    type=errors.UPSTREAM_UNAVAILABLE,
                )
            _beat("waiting for LastUpdateStatus")
            time.sleep(POLL_SECONDS)

    def merge(self, name: str, value: str | None) -> bool:
        """Sets (or with None removes) one variable of $LATEST, keeping every other one, with
        the RevisionId read; a concurrent change makes the write fail, and it is re-read and
        re-merged. Returns whether anything had to change."""
        for _ in range(WRITE_TRIES):
            self.wait_updated()
            _beat("reading the configuration")
            config = self._lambda.get_function_configuration(FunctionName=self._function)
            variables = _variables(config)
            if variables.get(name) == value:
                return False
            if value is None:
                variables.pop(name)
            else:
                variables[name] = value
            try:
                self._lambda.update_function_configuration(
                    FunctionName=self._function,
                    Environment={"Variables": variables},
                    **_revision(config),
                )
            except ClientError as exc:
                if _code(exc) not in ("PreconditionFailedException", "ResourceConflictException"):
                    raise
                _beat("concurrent change: reading again")
                continue
            _beat("configuration written")
            self.wait_updated()
            return True
        raise ApplicationError(
            "the SCC Lambda's configuration kept changing under the repair; retrying",
            type=errors.UPSTREAM_UNAVAILABLE,
        )

    def release(self, alias: str) -> None:
        """Points `alias` at a version with the repaired configuration: publishes $LATEST (with
        its RevisionId) and moves the alias (with the alias's). Refuses when $LATEST differs from
        the alias's version in more than SERVICE_KEY_HASH: publishing would ship someone
        else's unreleased change."""
        current = self._lambda.get_function_configuration(
            FunctionName=self._function, Qualifier=alias
        )
        latest = self._lambda.get_function_configuration(FunctionName=self._function)
        if _variables(current).get(HASH_VARIABLE) == _variables(latest).get(HASH_VARIABLE):
            return

        def others(config: dict[str, Any]) -> tuple[Any, ...]:
            rest = {k: v for k, v in _variables(config).items() if k != HASH_VARIABLE}
            return (config.get("CodeSha256"), rest)

        if others(current) != others(latest):
            raise errors.needs_operator(
                f"$LATEST of {self._function} has unpublished changes besides {HASH_VARIABLE}, "
                f"so the repair will not publish it to alias {alias}",
                f"publish $LATEST and move alias {alias} after reviewing it, or unset "
                "CHARTERS_SCC_LAMBDA_QUALIFIER if the SCC API invokes $LATEST",
                subject=self._function,
            )
        version = self._lambda.publish_version(
            FunctionName=self._function,
            Description=f"{HASH_VARIABLE} repaired by charters",
            **_revision(latest),
        )["Version"]
        self.wait_updated(version)
        current_alias = self._lambda.get_alias(FunctionName=self._function, Name=alias)
        self._lambda.update_alias(
            FunctionName=self._function,
            Name=alias,
            FunctionVersion=version,
            **_revision(current_alias),
        )


def merge_service_key_hash(
    lambda_client: Any,
    function_name: str,
    key: str,
    *,
    qualifier: str | None = None,
    wait_seconds: float = 60.0,
) -> bool:
    """Writes SERVICE_KEY_HASH = sha256(key) into the function's environment, keeping every other
    variable, and (with a qualifier) releases it to that alias. Returns whether $LATEST had to
    change."""
    repair = _Repair(lambda_client, function_name, wait_seconds)
    changed = repair.merge(HASH_VARIABLE, service_key_hash(key))
    if qualifier:
        repair.release(qualifier)
    return changed


class SccLambdaActivities:
    def __init__(
        self,
        lambda_client: Any,
        secrets: SecretReader,
        function_name: str,
        key_secret_id: str,
        *,
        qualifier: str | None = None,
        wait_seconds: float = 20.0,
    ) -> None:
        self._lambda = lambda_client
        self._secrets = secrets
        self._function = function_name
        self._secret_id = key_secret_id
        self._qualifier = qualifier
        self._wait = wait_seconds

    def _errors(self) -> Any:
        return aws_errors("Lambda", FIXES, DEFAULT_FIX, subject=self._function)

    def _invoked_variables(self) -> dict[str, str]:
        """The variables of what the SCC API invokes: the alias's version, or $LATEST."""
        extra = {"Qualifier": self._qualifier} if self._qualifier else {}
        return _variables(
            self._lambda.get_function_configuration(FunctionName=self._function, **extra)
        )

    @activity.defn(name="check_scc_service_key")
    def check_scc_service_key(self) -> SccKeyCheck:
        """Compares hashes only; neither the key nor the hash leaves this activity."""
        with self._errors():
            stored = self._invoked_variables().get(HASH_VARIABLE)
        if not stored:
            return SccKeyCheck(ok=False, reason="missing")
        expected = service_key_hash(self._secrets.get(self._secret_id))
        if stored.lower() != expected:
            return SccKeyCheck(ok=False, reason="mismatch")
        return SccKeyCheck(ok=True, reason="ok")

    @activity.defn(name="repair_scc_service_key_hash")
    def repair_scc_service_key_hash(self) -> SccKeyCheck:
        """Merges the hash into the environment (see the module's docstring) and reports what
        the SCC API now invokes."""
        with self._errors():
            merge_service_key_hash(
                self._lambda,
                self._function,
                self._secrets.get(self._secret_id),
                qualifier=self._qualifier,
                wait_seconds=self._wait,
            )
        return self.check_scc_service_key()

    @activity.defn(name="await_scc_service_key")
    def await_scc_service_key(self) -> SccKeyCheck:
        """Fails (retryably) until the hash is right: the workflow waits on this activity's own
        retry policy, so a block of any length adds no history per poll. A poll that finds it
        not yet fixed is expected, not a fault: it logs one line, and its failure is BENIGN,
        which the SDK logs at DEBUG without the traceback it gives other failures."""
        check = self.check_scc_service_key()
        if not check.ok:
            message = f"SERVICE_KEY_HASH on the SCC Lambda is {check.reason}"
            activity.logger.info("%s; polling again (attempt %d)", message, activity.info().attempt)
            raise ApplicationError(
                message, type=SCC_KEY_NOT_FIXED, category=ApplicationErrorCategory.BENIGN
            )
        return check
