"""A trainer run (``streamrec trainer --once --force``) that stops dead at one stage, so that a
test can kill its process there with SIGKILL or try a second trainer beside it:

    python -m tests.integration.stopping_trainer STAGE[:N]

STAGE is a ``RunStage`` value and N the chunk number while rebuilding. The run goes through
``trainer.wiring.run_trainer_once`` with a ``RunHooks.on_stage`` hook, the extension point a
deployment has too; only the stopping lives here, with the tests. Settings come from the
environment, as for ``streamrec trainer``. It prints ``stopped at STAGE:N`` when it stops.
"""

from __future__ import annotations

import sys
import threading

from streamrec.config import Settings
from streamrec.services.training_run import RunHooks, RunStage
from trainer.wiring import run_trainer_once


def stop_at(stage: RunStage, number: int) -> RunHooks:
    def stop_if_due(current: RunStage, current_number: int) -> None:
        if (current, current_number) == (stage, number):
            print(f"stopped at {stage.value}:{number}", flush=True)
            threading.Event().wait()

    return RunHooks(on_stage=stop_if_due)


def main(specification: str) -> None:
    stage_name, _, number = specification.partition(":")
    result = run_trainer_once(
        Settings(), force=True, hooks=stop_at(RunStage(stage_name), int(number or 0))
    )
    print(f"run {result.run_id}: {result.outcome.value}: {result.reason}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
