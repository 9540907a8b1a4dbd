"""Datasets in object storage: an S3-compatible bucket (``s3://bucket/key``) or a ``file://`` URI.

A dataset (or an inference batch) that lives in a bucket is *staged* before any guardrail reads it: its bytes are
streamed, with bounded memory, into a local copy under the data folder (:func:`staged_path`), and every guardrail
runs on that copy: the integrity step hashes and pins it (its Merkle root, and the object's version id), later
steps hold to the pin, and training reads the copy, so what was verified is what gets used even if the object is
written again meanwhile. The copy is written beside its final name and renamed into place, so no reader ever
sees half an object; it is made from one version of the object (a version-aware store is read at the version id
it described, and an ETag that changes during the copy is refused as a file that changed while it was read).

Why a staged copy rather than reading the bucket in each step: the guardrails read a delivery several times
(hash, scan, quality, drift, training); reading the store each time would cost one download per step and open a
window in which each step could see other bytes. One download, pinned, is both cheaper and safe.

The filesystem is fsspec's (s3fs for ``s3://``), the one behind Airflow's ``ObjectStoragePath``: inside Airflow,
``charter_airflow.object_storage`` attaches it to ``ObjectStoragePath`` under the dataset's connection; outside
(the ``charter`` command line), the connection comes from ``AIRFLOW_CONN_<ID>`` as Airflow documents it. The
connection's login and password are the access key and secret; its extra may give ``endpoint_url`` (an
S3-compatible server) and ``region_name``. No message of this module contains a credential or an endpoint.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from charter_guardrails.core.errors import (
    ConfigError,
    DatasetFileChanged,
    DatasetFileEmpty,
    DatasetFileMissing,
    InfrastructureError,
)

if TYPE_CHECKING:
    from charter_guardrails.incidents.connections import ConnectionInfo

#: The schemes a dataset's ``uri`` may use.
SCHEMES = ("s3", "file")
#: The folder of the data folder that holds staged copies: ``<data>/.objects/<scheme>/<bucket>/<key>``.
STAGING_FOLDER = ".objects"
#: Bytes read from the store per request while staging.
CHUNK_BYTES = 8 * 1024 * 1024


class ObjectStoreUnavailable(InfrastructureError):
    """The bucket's server cannot be reached or failed: an ordinary error Airflow retries."""


@dataclass(frozen=True)
class ObjectInfo:
    """What the store says of one object: no content, no credential."""

    uri: str
    size: int
    #: the version the store gives this object's bytes (a versioned bucket), else None
    version_id: str | None = None
    #: the store's entity tag (an MD5 for a simple upload), quotes removed
    etag: str | None = None

    def facts(self) -> dict[str, Any]:
        return {"uri": self.uri, "size_bytes": self.size, "version_id": self.version_id, "etag": self.etag}


class Located(Protocol):
    """An object on a filesystem: an Airflow ``ObjectStoragePath`` is one, as is :class:`ObjectLocation`."""

    @property
    def fs(self) -> Any: ...

    @property
    def path(self) -> str: ...


@dataclass(frozen=True)
class ObjectLocation:
    """An fsspec filesystem and the object's path on it (bucket/key for S3)."""

    fs: Any
    path: str


def parse_uri(uri: str) -> tuple[str, str, str]:
    """``(scheme, bucket, key)`` of an object URI (``file://`` has an empty bucket and the absolute path as key).

    :raises ConfigError: not ``s3://bucket/key`` or ``file:///path``, a key with ``..``, or a folder.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{uri!r} is not an object URI: write s3://bucket/key or file:///absolute/path")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(
            f"object URI {_shown(uri)} must not carry a query, a fragment or credentials: name the connection "
            "that holds the credentials with conn_id"
        )
    key = unquote(parts.path)
    bucket = parts.netloc if scheme == "s3" else ""
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise ConfigError(f"{_shown(uri)}: a file URI names a local path (file:///absolute/path), not a host")
    pure = PurePosixPath(key)
    if (scheme == "s3" and not bucket) or not pure.name or ".." in pure.parts or key.endswith("/"):
        raise ConfigError(f"{_shown(uri)} must name one object (s3://bucket/key or file:///path), without '..'")
    return scheme, bucket, key.lstrip("/") if scheme == "s3" else key


def _shown(uri: str) -> str:
    """The URI as messages show it: scheme, bucket and key only (never a userinfo part)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def staged_path(uri: str, data_dir: Path) -> Path:
    """Where the object ``uri`` is staged under the data folder: ``.objects/<scheme>/<bucket>/<key>``."""
    scheme, bucket, key = parse_uri(uri)
    parts = [p for p in PurePosixPath(key).parts if p not in ("/", "")]
    return data_dir.resolve().joinpath(STAGING_FOLDER, scheme, bucket or "_", *parts)


def s3_filesystem(connection: ConnectionInfo | None) -> Any:
    """An s3fs filesystem for ``connection`` (access key as login, secret as password; extra ``endpoint_url``,
    ``region_name``), version-aware so that an object is read at the version it was described at."""
    try:
        import s3fs
    except ImportError:  # pragma: no cover - the s3 extra is part of the lock
        raise ConfigError(
            "datasets in s3:// need s3fs: install the package with its s3 extra (charter-guardrails[s3])"
        ) from None
    options: dict[str, Any] = {
        "version_aware": True,
        "skip_instance_cache": True,
        "config_kwargs": {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3}},
    }
    if connection is not None:
        extra = connection.extra or {}
        endpoint = extra.get("endpoint_url") or (_host_url(connection) if connection.host else None)
        options.update(key=connection.login, secret=connection.password)
        if endpoint:
            options["endpoint_url"] = str(endpoint)
        if extra.get("region_name"):
            options["client_kwargs"] = {"region_name": str(extra["region_name"])}
    return s3fs.S3FileSystem(**options)


def _host_url(connection: ConnectionInfo) -> str:
    host = str(connection.host)
    base = host if "://" in host else f"http://{host}"
    return f"{base}:{connection.port}" if connection.port else base


def locate(uri: str, connection: ConnectionInfo | None = None) -> ObjectLocation:
    """The object ``uri`` on its filesystem, with ``connection``'s credentials (S3)."""
    scheme, bucket, key = parse_uri(uri)
    if scheme == "file":
        from fsspec.implementations.local import LocalFileSystem

        return ObjectLocation(LocalFileSystem(), key)
    return ObjectLocation(s3_filesystem(connection), f"{bucket}/{key}")


def describe(location: Located, uri: str) -> ObjectInfo:
    """The object's size, version id and ETag, as the store gives them now.

    :raises DatasetFileMissing: no such object (a configuration error naming it).
    :raises DatasetFileEmpty: the object has no bytes.
    :raises ObjectStoreUnavailable: the store cannot be reached (retried).
    """
    with _store_errors(uri):
        info = location.fs.info(location.path, refresh=True) if _is_s3(location) else location.fs.info(location.path)
    if info.get("type", "file") != "file":
        raise DatasetFileMissing(f"{_shown(uri)} is a folder, not an object: name one object in the dataset's uri")
    size = int(info.get("size") or 0)
    if size == 0:
        raise DatasetFileEmpty(f"{_shown(uri)} is empty: deliver the data again, then re-run")
    etag = info.get("ETag") or info.get("etag")
    return ObjectInfo(
        uri=_shown(uri),
        size=size,
        version_id=None if info.get("VersionId") in (None, "", "null") else str(info["VersionId"]),  # unversioned
        etag=str(etag).strip('"') if etag else None,
    )


def stage(location: Located, uri: str, target: Path) -> ObjectInfo:
    """Stream one version of the object into ``target`` (bounded memory), atomically; return what was copied.

    :raises DatasetFileChanged: the object was written again while it was copied (its ETag or size changed).
    """
    before = describe(location, uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    options: dict[str, Any] = {}
    if _is_s3(location):  # one ranged GET per read, no read-ahead cache: memory stays one chunk
        options = {"block_size": CHUNK_BYTES, "cache_type": "none"}
        if before.version_id:
            options["version_id"] = before.version_id
    copied = 0
    try:
        with _store_errors(uri), location.fs.open(location.path, "rb", **options) as source, partial.open("wb") as out:
            while chunk := source.read(CHUNK_BYTES):
                out.write(chunk)
                copied += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        after = describe(location, uri) if not before.version_id else before
        if copied != before.size or (after.etag, after.size) != (before.etag, before.size):
            raise DatasetFileChanged(
                f"{before.uri} was written again while it was copied ({before.size} bytes announced, {copied} "
                "read): deliver it once, then re-run"
            )
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return before


def upload(local: Path, location: Located, uri: str) -> None:
    """Write the local file ``local`` to the object (predictions beside a batch, a quarantined batch)."""
    with _store_errors(uri):
        location.fs.put_file(str(local), location.path)


def move(source: Located, target: Located, uri: str) -> None:
    """Copy the object to ``target`` on the same store, then delete its current version (a versioned bucket
    keeps the history: nothing is lost)."""
    with _store_errors(uri):
        target.fs.makedirs(str(PurePosixPath(target.path).parent), exist_ok=True)  # a folder for file://
        source.fs.copy(source.path, target.path)
        source.fs.rm_file(source.path)


def _is_s3(location: Located) -> bool:
    protocol = getattr(location.fs, "protocol", "")
    return "s3" in (protocol if isinstance(protocol, tuple) else (protocol,))


@contextlib.contextmanager
def _store_errors(uri: str) -> Any:
    """The store's exceptions as the project's: a missing object names it; an unreachable or failing server is
    retried; an access refusal names the connection to fix. The original exception is not chained: botocore's
    messages may carry the endpoint."""
    try:
        yield
    except FileNotFoundError:
        raise DatasetFileMissing(
            f"{_shown(uri)} does not exist: deliver it, or fix the dataset's uri in the policy"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"access to {_shown(uri)} was refused: give the dataset's connection (conn_id) read access to it"
        ) from None
    except (ConfigError, InfrastructureError):
        raise
    except Exception as exc:  # noqa: BLE001 - botocore and aiohttp errors: connection refused, timeouts, 5xx
        raise ObjectStoreUnavailable(
            f"the store of {_shown(uri)} cannot be reached or failed ({type(exc).__name__}); Airflow retries the "
            "task, check the connection's endpoint if it persists"
        ) from None
