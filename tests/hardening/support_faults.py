"""Helpers shared by the hardening tests: campaign size, ledger dumps, a private PostgreSQL server,
canary search, and the human answer to a HITL form of a ``dag.test()`` run.

``HARDENING_SCALE=full`` (``make hardening``) runs the campaigns at full size; the default is the
smaller CI size of ``make test``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

FULL = os.environ.get("HARDENING_SCALE") == "full"


def scaled(ci: int, full: int) -> int:
    """The size of a campaign: ``full`` under ``make hardening``, ``ci`` in ``make test``."""
    return full if FULL else ci


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the ledger, every table and every column ---------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def ledger_dump(url: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every row of every ledger table (alembic's bookkeeping included), all columns, in primary-key order."""
    from charter_guardrails.ledger.db import get_engine
    from sqlalchemy import MetaData, select

    engine = get_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for name in sorted(metadata.tables):
            table = metadata.tables[name]
            order = list(table.primary_key.columns) or list(table.columns)
            out[name] = [
                {k: _plain(v) for k, v in row._mapping.items()} for row in conn.execute(select(table).order_by(*order))
            ]
    return out


def ledger_text(url: str | None = None) -> str:
    return json.dumps(ledger_dump(url), ensure_ascii=False, default=str, sort_keys=True)


def sqlite_dump_text(path: Path) -> str:
    """Every row of every table of a SQLite file (the Airflow metadata database), as text."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        parts = []
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for name in names:
            # the table names are read from the test ledger's own sqlite_master, not from outside input
            for row in conn.execute(f'SELECT * FROM "{name}"'):  # noqa: S608
                parts.append(name + "\t" + "\t".join(_cell_text(v) for v in row))
        return "\n".join(parts)
    finally:
        conn.close()


def _cell_text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return "" if value is None else str(value)


# --- canaries ------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower case, no accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


_SEPARATORS = re.compile(r"[\s.\-_/()\u00a0\u202f]+")


def _squash(text: str) -> str:
    """No separators: ``06 47-29.18 53`` and ``FR76 3000 6000`` become one word."""
    return _SEPARATORS.sub("", text)


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def views(text: str) -> list[str]:
    """The text as written, with JSON, HTML and URL escapes decoded, folded and squashed."""
    decoded = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), html.unescape(unquote(text)))
    folded = _fold(decoded)
    return [text, decoded, folded, _squash(folded)]


def canary_forms(canaries: Any) -> dict[str, set[str]]:
    """For each canary, the forms to look for, already folded (and squashed for numbers).

    Phones: ``+33 6…``, ``0033…``, ``06…`` with any separator. NIR: with and without its key. SIRET:
    the SIRET and its SIREN. IBAN: compact (which covers any grouping by 4) and its BBAN. Names:
    the full name, the first and the last name. E-mail: any case. Address: the street.
    """
    digits = lambda s: "".join(c for c in s if c.isdigit())  # noqa: E731 - local helper
    phone = digits(canaries.phone)[2:]  # without the country code
    nir, siret = digits(canaries.nir), digits(canaries.siret)
    iban = _squash(_fold(canaries.iban))
    street = canaries.address.split(" ", 2)[2]
    return {
        "phone": {"33" + phone, "0" + phone},
        "nir": {nir, nir[:13]},
        "siret": {siret, siret[:9]},
        "iban": {iban, iban[4:]},
        "email": {_fold(canaries.email)},
        "name": {_fold(canaries.name), _fold(canaries.first_name), _fold(canaries.last_name)},
        "address": {_squash(_fold(street))},
    }


@dataclass
class Hit:
    place: str
    source: str
    canary: str
    form: str
    context: str

    def __str__(self) -> str:
        return f"{self.place}: {self.source}: {self.canary} ({self.form}) in …{self.context}…"


@dataclass
class CanarySearch:
    """Looks for every form of every canary in texts, and remembers what it searched."""

    canaries: Any
    forms: dict[str, set[str]] = field(init=False)
    searched: dict[str, int] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.forms = canary_forms(self.canaries)

    def search(self, place: str, source: str, text: str) -> list[Hit]:
        self.searched[place] = self.searched.get(place, 0) + len(text)
        found = []
        for view in views(text):
            for canary, forms in self.forms.items():
                for form in forms:
                    at = view.find(form)
                    if at >= 0 and not any(h.source == source and h.canary == canary for h in found):
                        found.append(Hit(place, source, canary, form, view[max(at - 60, 0) : at + len(form) + 60]))
        self.hits.extend(found)
        return found

    def search_file(self, place: str, path: Path) -> list[Hit]:
        return self.search(place, str(path), file_text(path))


def file_text(path: Path) -> str:
    """What a file holds, as text: Parquet and pickled artifacts are decoded, other files read as UTF-8 (or Latin-1)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_csv(index=False)
    if suffix in (".joblib", ".pkl", ".pickle"):
        return _artifact_text(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _artifact_text(path: Path) -> str:
    """The raw bytes of a model artifact (strings are pickled as UTF-8) and every string reachable in it."""
    import joblib

    raw = path.read_bytes().decode("utf-8", errors="replace")
    strings: list[str] = []
    seen: set[int] = set()

    def walk(obj: Any, depth: int = 0) -> None:
        if depth > 12 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, str):
            strings.append(obj)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(k, depth + 1)
                walk(v, depth + 1)
        elif isinstance(obj, list | tuple | set | frozenset):
            for v in obj:
                walk(v, depth + 1)
        elif hasattr(obj, "dtype") and getattr(obj.dtype, "kind", "") in ("U", "O", "S"):
            for v in obj.ravel().tolist():
                walk(v if not isinstance(v, bytes) else v.decode("utf-8", "replace"), depth + 1)
        elif hasattr(obj, "__dict__"):
            walk(vars(obj), depth + 1)

    walk(joblib.load(path))
    return raw + "\n" + "\n".join(strings)


def files_under(root: Path, *, exclude: Iterable[Path] = ()) -> Iterator[Path]:
    excluded = [p.resolve() for p in exclude]
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(path.resolve().is_relative_to(e) for e in excluded):
            yield path


# --- a human answer for dag.test() -----------------------------------------------------------------


class HitlAnswer(threading.Thread):
    """Answers the HITL form of ``dag_id.task_id`` once its task is parked, as the HITL REST API does.

    ``dag.test()`` runs the DAG in this process and waits, without a scheduler, for an answer
    recorded in the metadata database. This thread records it the way the api-server's
    ``PATCH …/hitlDetails`` does: the responder, the options and the parameters, then the task
    is resumed through ``handle_event_submit``.
    """

    def __init__(
        self,
        dag_id: str,
        option: str,
        *,
        user: str,
        params_input: dict[str, Any] | None = None,
        task_id: str = "human_review",
        timeout: float = 600,
    ) -> None:
        super().__init__(daemon=True, name=f"hitl-{dag_id}")
        self.dag_id, self.task_id, self.option, self.user = dag_id, task_id, option, user
        self.params_input = dict(params_input or {})
        self.timeout = timeout
        self.answered = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                if self._answer_once():
                    self.answered.set()
                    return
                time.sleep(0.5)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _answer_once(self) -> bool:
        from airflow._shared.timezones import timezone
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == self.dag_id,
                    TaskInstance.task_id == self.task_id,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            ).first()
            if ti is None:
                return False
            detail = session.scalars(select(HITLDetail).where(HITLDetail.ti_id == ti.id)).first()
            if detail is None or detail.responded_at is not None:
                return False
            detail.responded_by = {"id": self.user, "name": self.user}
            detail.responded_at = timezone.utcnow()
            detail.chosen_options = [self.option]
            detail.params_input = self.params_input
            session.add(detail)
            handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
        return True


# --- a private PostgreSQL server --------------------------------------------------------------------


def postgres_bin() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name), reverse=True
    )
    return candidates[0].parent if candidates else None


class PrivatePostgres:
    """A throw-away PostgreSQL server of this test only, on a free port, that a test may restart or kill.

    The shared server at 127.0.0.1:5432 is never touched. ``initdb`` refuses to run as root: as root
    the cluster belongs to the ``postgres`` user and its commands run through ``runuser``.
    """

    def __init__(self, base: Path | None = None) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = binaries
        self.base = Path(tempfile.mkdtemp(prefix="charter-pg-", dir=base))
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}{self._log_tail()}"
            )
        return proc

    def _log_tail(self) -> str:
        try:
            return "\nserver log: " + self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def start(self) -> PrivatePostgres:
        self.sockets.mkdir(parents=True)
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        self.pg_ctl("start")
        return self

    def pg_ctl(self, action: str, *, mode: str = "fast") -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=50"
        argv = ["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60"]
        if action in ("stop", "restart"):
            argv += ["-m", mode]
        if action in ("start", "restart"):
            argv += ["-o", options]
        self._run(*argv, action)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- a reports folder that is full or read-only -----------------------------------------------------

_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
_MS_RDONLY, _MS_REC, _MS_PRIVATE = 1, 16384, 1 << 18


class FaultUnavailable(RuntimeError):
    """This machine cannot build the fault (no mount namespace)."""


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    import ctypes

    if rc != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _private_mount_namespace() -> None:
    """This process (single-threaded: a fresh fork) gets its own mounts; as a non-root user, in its own user
    namespace."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWNS) != 0:
        if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
            raise FaultUnavailable("neither a mount namespace nor a user namespace can be created here")
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")


def mount_fault(kind: str, folder: Path) -> None:
    """Make ``folder`` a full (``kind="full"``) or read-only (``"read-only"``) filesystem for this process only.

    The filesystem is a real tmpfs in a private mount namespace, so the kernel itself answers
    ENOSPC or EROFS, whoever runs the test (root ignores permission bits, not a read-only mount).
    """
    folder.mkdir(parents=True, exist_ok=True)
    _private_mount_namespace()
    libc = _libc()
    target = str(folder).encode()
    if kind == "read-only":
        _check(libc.mount(b"tmpfs", target, b"tmpfs", _MS_RDONLY, b"size=64k"), f"mount a read-only tmpfs on {folder}")
        return
    _check(libc.mount(b"tmpfs", target, b"tmpfs", 0, b"size=16k"), f"mount a 16 KiB tmpfs on {folder}")
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        if exc.errno != 28:  # ENOSPC: full, as wanted
            raise
    finally:
        os.close(fd)


def in_forked_child(setup: Any, body: Any, timeout: float = 300) -> dict[str, Any]:
    """Run ``setup()`` then ``body()`` in a forked child; return what ``body`` returned or raised, as JSON data."""
    import select as select_module
    import signal

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read_end)
            try:
                setup()
            except FaultUnavailable as exc:
                payload: dict[str, Any] = {"unavailable": str(exc)}
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload = {"setup_error": repr(exc)}
            else:
                try:
                    payload = {"returned": body()}
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    payload = {
                        "raised": type(exc).__name__,
                        "classes": [c.__name__ for c in type(exc).__mro__],
                        "message": str(exc),
                        "cause": repr(exc.__cause__ or exc.__context__),
                    }
            data = json.dumps(payload, default=str).encode()
            while data:
                data = data[os.write(write_end, data) :]
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select_module.select([read_end], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"the child did not finish within {timeout} s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"raised": "nothing", "message": "the child died without an answer"}')
