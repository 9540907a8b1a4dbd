"""The compose file's backing services, played by what this machine already runs.

A native run of ``docker-compose.yaml`` (:mod:`charter_demo.compose_runner`) starts the project's own services
only. The others stand in as follows:

* ``postgres``: the machine's PostgreSQL server. What ``deploy/postgres/init-databases.sh`` does on a new data
  volume (one login role and one database owned by it for each database the Airflow services' URLs name, with
  ``CONNECT`` revoked from ``PUBLIC``) is done here with names unique to the run (``<run>_airflow``...), because
  the server is shared: the script's fixed names would collide with another run or a ``make cluster``. The
  databases and roles are dropped by :meth:`PostgresStandIn.stop`.
* ``redis``: the machine's Redis server. It has no password, so the password of the compose file's broker URL
  (the ``requirepass`` of the ``redis`` service's own command) is left out; the Celery queue of the run is its own
  (``AIRFLOW__OPERATORS__DEFAULT_QUEUE``) so that two runs on one Redis never take each other's tasks.
* ``mailpit``: an SMTP catcher (aiosmtpd) on a free loopback port, keeping every message it receives.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

__all__ = ["PostgresStandIn", "RedisStandIn", "SmtpCatcher", "free_port", "stand_in_for", "write_dev_secrets"]


def free_port() -> int:
    """A TCP port of the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"{name!r} is not a plain PostgreSQL identifier")
    return f'"{name}"'


@dataclass
class PostgresStandIn:
    """The ``postgres`` service: a role and a database of this run per ``user``/``database`` pair the URLs name."""

    admin_url: str  # e.g. postgresql://postgres@127.0.0.1:5432, without a database
    prefix: str
    port_in_container: int = 5432
    roles: dict[str, str] = field(default_factory=dict)  # compose user -> role of this run
    databases: dict[str, str] = field(default_factory=dict)  # compose database -> database of this run
    owners: dict[str, str] = field(default_factory=dict)  # database of this run -> its owner role

    @property
    def _server(self) -> SplitResult:
        return urlsplit(self.admin_url)

    def address(self, container_port: int) -> tuple[str, int]:
        return self._server.hostname or "127.0.0.1", self._server.port or 5432

    def plan(self, urls: list[SplitResult]) -> None:
        """Name this run's role and database for each URL's user and database."""
        for url in urls:
            user, database = unquote(url.username or "postgres"), url.path.lstrip("/") or "postgres"
            self.roles.setdefault(user, f"{self.prefix}_{re.sub(r'[^a-z0-9_]', '_', user.lower())}")
            self.databases.setdefault(database, f"{self.prefix}_{re.sub(r'[^a-z0-9_]', '_', database.lower())}")
            self.owners.setdefault(self.databases[database], self.roles[user])

    def hook(self, url: SplitResult) -> tuple[str | None, str]:
        user = unquote(url.username or "postgres")
        userinfo = self.roles.get(user, user) + (f":{url.password}" if url.password else "")
        return userinfo, "/" + self.databases.get(url.path.lstrip("/"), url.path.lstrip("/"))

    def start(self) -> None:
        import psycopg

        with psycopg.connect(f"{self.admin_url}/postgres", autocommit=True, connect_timeout=5) as conn:
            for role in self.roles.values():
                conn.execute(f"CREATE ROLE {_identifier(role)} LOGIN")
            for database in self.databases.values():
                conn.execute(f"CREATE DATABASE {_identifier(database)} OWNER {_identifier(self.owners[database])}")
                conn.execute(f"REVOKE ALL ON DATABASE {_identifier(database)} FROM PUBLIC")

    def healthy(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(f"{self.admin_url}/postgres", connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def stop(self) -> None:
        import psycopg

        with psycopg.connect(f"{self.admin_url}/postgres", autocommit=True, connect_timeout=5) as conn:
            for database in self.databases.values():
                conn.execute(f"DROP DATABASE IF EXISTS {_identifier(database)} WITH (FORCE)")
            for role in self.roles.values():
                conn.execute(f"DROP ROLE IF EXISTS {_identifier(role)}")


@dataclass
class RedisStandIn:
    """The ``redis`` service: the machine's Redis, without the compose file's password."""

    url: str  # e.g. redis://127.0.0.1:6379
    port_in_container: int = 6379

    def address(self, container_port: int) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 6379

    def hook(self, url: SplitResult) -> tuple[str | None, str]:
        return None, url.path

    def start(self) -> None:
        """Nothing to start: the server is the machine's."""

    def healthy(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=3).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Nothing to stop; the run's queue is left empty by its stopped workers."""


@dataclass
class SmtpCatcher:
    """The ``mailpit`` service: an SMTP server on loopback that keeps each message (and writes it to ``folder``)."""

    folder: Path
    port_in_container: int = 1025
    port: int = field(default_factory=free_port)
    received: list[bytes] = field(default_factory=list)
    _controller: Any = None

    def address(self, container_port: int) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def hook(self, url: SplitResult) -> tuple[str | None, str]:
        return url.netloc.rpartition("@")[0] or None, url.path

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        catcher = self
        self.folder.mkdir(parents=True, exist_ok=True)

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                catcher.received.append(envelope.content)
                (catcher.folder / f"{len(catcher.received):04d}.eml").write_bytes(envelope.content)
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def healthy(self) -> bool:
        return self._controller is not None

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


StandIn = PostgresStandIn | RedisStandIn | SmtpCatcher


def stand_in_for(image: str, *, prefix: str, pg_admin: str, redis_url: str, state_dir: Path) -> StandIn:
    """The stand-in of a service of another image than the project's; a :class:`ValueError` when there is none."""
    repository = image.split(":", 1)[0].rsplit("/", 1)[-1]
    if repository == "postgres":
        return PostgresStandIn(pg_admin.rstrip("/"), prefix)
    if repository == "redis":
        return RedisStandIn(redis_url)
    if repository == "mailpit":
        return SmtpCatcher(state_dir / "mail")
    raise ValueError(f"no local stand-in for image {image}: only PostgreSQL, Redis and the mail catcher have one")


def write_dev_secrets(folder: Path, users: Mapping[str, str]) -> None:
    """The secret files of ``deploy/secrets/README.md``, with development values (``users``: name -> password)."""
    import base64
    import json
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    files = {
        "airflow_users.json": json.dumps(dict(users)),
        "airflow_fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "airflow_jwt_secret": secrets.token_urlsafe(48),
        "signing_ed25519.pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "signing_ed25519.pub": key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        "pseudonymisation.key": base64.b64encode(os.urandom(32)).decode(),
        "smtp_password": "",
    }
    for name, content in files.items():
        path = folder / name
        path.write_text(content + ("\n" if content else ""))
        path.chmod(0o600)
