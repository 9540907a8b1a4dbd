"""The keys the tasks read from Airflow Variables are masked by Airflow: their names carry a word of Airflow's
sensitive list (so the REST API and the UI show ``***``), and every value read is also given to Airflow's
``mask_secret`` (so a task log never holds it, whatever the name). The old names are still read, with a
deprecation warning, and masked all the same."""

from __future__ import annotations

import base64
import logging
import os
import warnings
from typing import Any

import pytest

NEW = {
    "CHARTER_SIGNING_KEY": "charter_signing_key_secret",
    "CHARTER_PSEUDONYMISATION_KEY": "charter_pseudonymisation_key_secret",
}
OLD = {"CHARTER_SIGNING_KEY": "charter_signing_key", "CHARTER_PSEUDONYMISATION_KEY": "charter_pseudonymisation_key"}


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode("ascii")
    )


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in (*NEW, "CHARTER_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHARTER_LEDGER_URL", "sqlite://")  # no connection lookup
    return {"CHARTER_SIGNING_KEY": _pem(), "CHARTER_PSEUDONYMISATION_KEY": base64.b64encode(os.urandom(32)).decode()}


def _variables(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> list[tuple[Any, str | None]]:
    import airflow.sdk
    import airflow.sdk.log

    class _Variable:
        @staticmethod
        def get(key: str, default: Any = None) -> Any:
            return values.get(key, default)

    masked: list[tuple[Any, str | None]] = []
    monkeypatch.setattr(airflow.sdk, "Variable", _Variable)
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda secret, name=None: masked.append((secret, name)))
    return masked


def test_airflow_masks_the_new_variable_names_and_not_the_old_ones() -> None:
    """Airflow's own decision (``should_hide_value_for_key``) and the REST API's response model."""
    from airflow._shared.secrets_masker import should_hide_value_for_key
    from airflow.api_fastapi.core_api.datamodels.variables import VariableResponse
    from charter_airflow.runtime import SECRET_VARIABLES

    assert {env: names[0] for env, names in SECRET_VARIABLES.items()} == NEW
    for name in NEW.values():
        assert should_hide_value_for_key(name), name
        shown = VariableResponse(
            key=name, value="clé-très-secrète", description=None, is_encrypted=True, team_name=None
        )
        assert shown.val == "***"
    for name in OLD.values():
        assert not should_hide_value_for_key(name), f"{name}: the reason for the new names"


def test_the_tasks_read_the_new_names_and_mask_every_value(
    secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter_airflow.runtime import configure_from_airflow

    masked = _variables(monkeypatch, {NEW[env]: value for env, value in secrets_env.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        configure_from_airflow()
    assert {env: os.environ[env] for env in NEW} == secrets_env
    shown = {secret for value, _ in masked for secret in (value if isinstance(value, list) else [value])}
    for value in secrets_env.values():
        assert value in shown
    pem_body = [line for line in secrets_env["CHARTER_SIGNING_KEY"].splitlines() if not line.startswith("-----")]
    assert set(pem_body) <= shown, "a log line holding one line of the PEM is masked too"


def test_the_old_names_are_still_read_with_a_deprecation_warning_and_masked(
    secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from charter_airflow.runtime import configure_from_airflow

    masked = _variables(monkeypatch, {OLD[env]: value for env, value in secrets_env.items()})
    caplog.set_level(logging.WARNING)
    with pytest.warns(DeprecationWarning, match="charter_signing_key_secret"):
        configure_from_airflow()
    assert {env: os.environ[env] for env in NEW} == secrets_env
    shown = {secret for value, _ in masked for secret in (value if isinstance(value, list) else [value])}
    assert set(secrets_env.values()) <= shown
    assert "charter_pseudonymisation_key_secret" in caplog.text
    for value in secrets_env.values():
        assert value not in caplog.text


def test_keys_given_by_the_environment_are_masked_too(
    secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``deploy/docker-entrypoint.sh`` exports the keys from Docker secrets: Airflow does not know them as secrets."""
    from charter_airflow.runtime import configure_from_airflow

    for env, value in secrets_env.items():
        monkeypatch.setenv(env, value)
    masked = _variables(monkeypatch, {})
    configure_from_airflow()
    shown = {secret for value, _ in masked for secret in (value if isinstance(value, list) else [value])}
    assert set(secrets_env.values()) <= shown
