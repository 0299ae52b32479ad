"""The trainer's schedule: ``settings.trainer.schedule`` as an APScheduler 3 trigger.

``interval:SECONDS`` runs every SECONDS from the trainer's start; ``cron:<crontab line>`` runs
at the times a crontab line names (five fields, the server's local time zone unless the
line's fields say otherwise).

>>> schedule_trigger("interval:900").interval.total_seconds()
900.0
>>> nightly = schedule_trigger("cron:0 3 * * *")
>>> nightly.fields[5].name, str(nightly.fields[5])
('hour', '3')
>>> schedule_trigger("cron:61 * * * *")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
trainer.schedule.ScheduleError: trainer.schedule 'cron:61 * * * *': ... higher than the maximum...
"""

from __future__ import annotations

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from streamrec.errors import UserFacingError


class ScheduleError(UserFacingError):
    """The configured schedule cannot be turned into a trigger; the message says why."""


def schedule_trigger(schedule: str) -> BaseTrigger:
    kind, _, rest = schedule.partition(":")
    rest = rest.strip()
    try:
        if kind == "interval":
            seconds = int(rest)
            if seconds < 1:
                raise ValueError("the interval must be at least one second")
            return IntervalTrigger(seconds=seconds)
        if kind == "cron":
            return CronTrigger.from_crontab(rest)
    except ValueError as error:
        raise ScheduleError(f"trainer.schedule {schedule!r}: {error}") from None
    raise ScheduleError(
        f"trainer.schedule {schedule!r}: expected 'interval:SECONDS' or 'cron:<crontab line>'"
    )
