"""``streamrec consume`` in child processes, as it is deployed: one process per consumer, each
with its own interpreter (so two consumers really use two cores), configured through the
environment only.

>>> from streamrec.config import Settings
>>> environment = settings_environment(Settings(model={"clusters": 8}))
>>> environment["STREAMREC_MODEL__CLUSTERS"]
'8'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import IO, Any

from streamrec.config import Settings

STOP_TIMEOUT_SECONDS = 60.0


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process ``settings`` (secrets included: it is
    passed to our own child, never logged)."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("STREAMREC_")
    }
    environment.update(_variables(settings.model_dump(mode="json"), "STREAMREC_"))
    environment["STREAMREC_DATABASE_URL"] = settings.effective_database_url
    if settings.kafka.sasl_password is not None:
        environment["STREAMREC_KAFKA__SASL_PASSWORD"] = (
            settings.kafka.sasl_password.get_secret_value()
        )
    return environment


def _variables(values: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for name, value in values.items():
        if value is None or name in {"database_url", "sasl_password"}:
            continue
        if isinstance(value, dict) and prefix == "STREAMREC_":
            yield from _variables(value, f"{prefix}{name.upper()}__")
        elif isinstance(value, dict | list):
            yield f"{prefix}{name.upper()}", json.dumps(value)
        else:
            yield f"{prefix}{name.upper()}", str(value)


class ConsumerProcesses:
    """``count`` consumers of one group; ``with`` stops them (SIGTERM: finish the batch,
    commit, leave) on the way out, and kills those that do not stop in time.

    With ``metrics=True`` each serves /metrics on a free port of its own (``metrics_urls``).
    """

    def __init__(
        self, settings: Settings, count: int, *arguments: str, metrics: bool = False
    ) -> None:
        from streamrec.broker import free_port

        self._command = [sys.executable, "-m", "streamrec.cli.main", "consume", *arguments]
        environment = settings_environment(settings)
        environment["STREAMREC_OBSERVABILITY__LOG_LEVEL"] = "WARNING"
        self._environment = environment
        self._ports = [free_port() if metrics else 0 for _ in range(count)]
        self._count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        # Files, not pipes: a chatty child must never block on a full pipe.
        self._outputs: list[IO[bytes]] = []

    def start(self) -> ConsumerProcesses:
        try:
            for port in self._ports:
                output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
                self._outputs.append(output)
                environment = self._environment | {
                    "STREAMREC_OBSERVABILITY__METRICS_PORT": str(port)
                }
                self.processes.append(
                    subprocess.Popen(
                        self._command, env=environment, stdout=output, stderr=subprocess.STDOUT
                    )
                )
        except BaseException:
            # Interrupted half-way (Ctrl-C, SIGTERM): ``with`` was not entered, so its exit
            # will not stop those already started.
            self.stop()
            raise
        return self

    @property
    def metrics_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/metrics" for port in self._ports if port]

    def failed(self) -> str | None:
        """The end of the output of a consumer that exited with an error, if one did."""
        for process, output in zip(self.processes, self._outputs, strict=True):
            if process.poll() not in (None, 0):
                output.seek(0)
                text = output.read().decode("utf-8", errors="replace")
                return f"a consumer exited with status {process.returncode}: {text[-2000:]}"
        return None

    def stop(self) -> None:
        """SIGTERM to every consumer, then wait; SIGKILL to those still running after
        STOP_TIMEOUT_SECONDS. A stop request (KeyboardInterrupt) arriving meanwhile waits
        until every consumer is gone (streamrec.cli.stopping ignores further signals)."""
        try:
            self._stop_processes()
        except KeyboardInterrupt:
            self._stop_processes()
            raise
        finally:
            for output in self._outputs:
                output.close()
            self.processes, self._outputs = [], []

    def _stop_processes(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> ConsumerProcesses:
        return self.start()

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
