"""The SCC Lambda's configuration, through the Lambda API: checks that SERVICE_KEY_HASH matches
the service key, and (when an operator approves) repairs it without touching other variables."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from charters.activities.secrets import SecretReader
from charters.models import SccKeyCheck

HASH_VARIABLE = "SERVICE_KEY_HASH"


def service_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def merge_service_key_hash(lambda_client: Any, function_name: str, key: str) -> bool:
    """Writes SERVICE_KEY_HASH = sha256(key) into the function's environment, keeping every other
    variable (UpdateFunctionConfiguration replaces the whole set), then waits for the update.
    Returns whether anything had to change."""
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    variables = dict(config.get("Environment", {}).get("Variables", {}))
    expected = service_key_hash(key)
    changed = variables.get(HASH_VARIABLE) != expected
    if changed:
        variables[HASH_VARIABLE] = expected
        lambda_client.update_function_configuration(
            FunctionName=function_name, Environment={"Variables": variables}
        )
    for _ in range(60):
        status = lambda_client.get_function_configuration(FunctionName=function_name).get(
            "LastUpdateStatus", "Successful"
        )
        if status != "InProgress":
            break
        time.sleep(1)
    return changed


class SccLambdaActivities:
    def __init__(
        self, lambda_client: Any, secrets: SecretReader, function_name: str, key_secret_id: str
    ) -> None:
        self._lambda = lambda_client
        self._secrets = secrets
        self._function = function_name
        self._secret_id = key_secret_id

    def _variables(self) -> dict[str, str]:
        config = self._lambda.get_function_configuration(FunctionName=self._function)
        return dict(config.get("Environment", {}).get("Variables", {}))

    @activity.defn(name="check_scc_service_key")
    def check_scc_service_key(self) -> SccKeyCheck:
        """Compares hashes only; neither the key nor the hash leaves this activity."""
        stored = self._variables().get(HASH_VARIABLE)
        if not stored:
            return SccKeyCheck(ok=False, reason="missing")
        expected = service_key_hash(self._secrets.get(self._secret_id))
        if stored.lower() != expected:
            return SccKeyCheck(ok=False, reason="mismatch")
        return SccKeyCheck(ok=True, reason="ok")

    @activity.defn(name="repair_scc_service_key_hash")
    def repair_scc_service_key_hash(self) -> SccKeyCheck:
        """Merges the hash into the environment (UpdateFunctionConfiguration replaces all
        variables, so the others are read first and written back) and waits for the update."""
        merge_service_key_hash(self._lambda, self._function, self._secrets.get(self._secret_id))
        return self.check_scc_service_key()

    @activity.defn(name="await_scc_service_key")
    def await_scc_service_key(self) -> SccKeyCheck:
        """Fails (retryably) until the hash is right: the workflow waits on this activity's own
        retry policy, so a block of any length adds no history per poll."""
        check = self.check_scc_service_key()
        if not check.ok:
            raise ApplicationError(
                f"SERVICE_KEY_HASH on the SCC Lambda is {check.reason}", type="SccKeyHashNotFixed"
            )
        return check
