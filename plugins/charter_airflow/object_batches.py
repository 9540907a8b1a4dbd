"""Inference batches delivered as objects: the run reads the staged copy; the bucket gets what follows.

The guardrails and the scoring read the batch's staged copy under the data folder, pinned at the version the
integrity step verified (``pinned_steps``). What the run decides is then written back beside the object:

- an accepted and scored batch gets its predictions beside it in the bucket, ``<key stem>.predictions.parquet``
  (the same file as the local one beside the accepted copy), and the ``accepted_batch`` event names the object,
  the version that was verified and the predictions object;
- a quarantined batch is moved under the bucket's ``quarantine/`` prefix (``quarantine/<run>__<key>``): copied
  there, then its current version deleted, so nothing downstream that lists the deliveries picks it up again. A
  versioned bucket keeps the delivered version in its history; nothing is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from charter_guardrails.core.policy_models import Dataset

#: The prefix of a bucket under which quarantined batches are moved.
QUARANTINE_PREFIX = "quarantine"


def batch_uri(dataset: Dataset, context: Mapping[str, Any], file_param: str) -> str:
    """The object the run checked: its parameter, else the triggering asset event's batch, else the dataset's."""
    from charter_airflow.runtime import requested_delivery

    return dataset.object_uri(requested_delivery(context, file_param))


def _sibling(uri: str, key: str) -> str:
    from charter_guardrails.readers.objects import parse_uri

    scheme, bucket, _ = parse_uri(uri)
    return f"{scheme}://{bucket}/{key}" if scheme == "s3" else f"file://{key}"


def quarantine_object(dataset: Dataset, context: Mapping[str, Any], file_param: str, run_id: str) -> str:
    """Move the batch object under ``quarantine/``; the URI it now has."""
    from charter_guardrails.readers.objects import move, parse_uri

    from charter_airflow.object_storage import airflow_locator
    from charter_airflow.runtime import safe_run_id

    uri = batch_uri(dataset, context, file_param)
    scheme, _, key = parse_uri(uri)
    pure = PurePosixPath(key)
    name = f"{safe_run_id(run_id)}__{pure.name}"
    # in a bucket, under its quarantine/ prefix; a local file (an absolute path), in a quarantine/ folder beside it
    quarantined = (
        PurePosixPath(QUARANTINE_PREFIX) / pure.parent / name
        if scheme == "s3"
        else pure.parent / QUARANTINE_PREFIX / name
    )
    target = _sibling(uri, str(quarantined))
    move(airflow_locator(uri, dataset.conn_id), airflow_locator(target, dataset.conn_id), uri)
    return target


def publish_predictions(dataset: Dataset, context: Mapping[str, Any], file_param: str, predictions: Path) -> str:
    """Write the predictions file beside the batch object; the URI of the predictions object."""
    from charter_guardrails.decision.scoring import PREDICTIONS_SUFFIX
    from charter_guardrails.readers.objects import parse_uri, upload

    from charter_airflow.object_storage import airflow_locator

    uri = batch_uri(dataset, context, file_param)
    _, _, key = parse_uri(uri)
    pure = PurePosixPath(key)
    target = _sibling(uri, str(pure.with_name(pure.stem + PREDICTIONS_SUFFIX)))
    upload(predictions, airflow_locator(target, dataset.conn_id), target)
    return target
