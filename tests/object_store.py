"""An S3-compatible server on loopback for the object-storage tests: moto in server mode, over real HTTP.

One server per test process (:func:`server`), started on a free port of 127.0.0.1 and stopped at exit; each test
gets its own versioned bucket (:class:`Bucket`) and the Airflow connection ``CONN_ID`` to it, as the environment
variable Airflow and the ``charter`` command line read (``AIRFLOW_CONN_CHARTER_S3``), with an access key and a
secret that must never appear in a message.
"""

from __future__ import annotations

import atexit
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONN_ID = "charter_s3"
ACCESS_KEY = "AKIACHARTERTESTKEY01"
SECRET_KEY = "charter-test-secret-Qm9uam91cg"
REGION = "eu-west-3"

_server: dict[str, Any] = {}


def server() -> str:
    """The endpoint URL of this process's server, started on first use."""
    if "url" not in _server:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        atexit.register(moto.stop)
        _server.update(url=f"http://{host}:{port}", moto=moto)
    return str(_server["url"])


def connection_json(endpoint: str) -> str:
    """The Airflow connection to the server, in the JSON form of ``AIRFLOW_CONN_<ID>``."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": endpoint, "region_name": REGION},
        }
    )


@dataclass
class Bucket:
    """A fresh versioned bucket of the loopback server."""

    name: str
    endpoint: str

    @classmethod
    def create(cls) -> Bucket:
        endpoint = server()
        bucket = cls(f"charter-{uuid.uuid4().hex[:12]}", endpoint)
        client = bucket.client()
        client.create_bucket(Bucket=bucket.name, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
        return bucket

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def put(self, key: str, data: bytes | Path) -> str:
        """Write the object ``key``; its new version id."""
        body = data.read_bytes() if isinstance(data, Path) else data
        return str(self.client().put_object(Bucket=self.name, Key=key, Body=body)["VersionId"])

    def get(self, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=self.name, Key=key)["Body"].read())

    def keys(self) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))
