"""The trainer process: a thin loop over ``streamrec.services.training_run`` and the clock.

- ``process``: ``TrainerProcess``, the schedule (APScheduler 3), control-topic commands with
  the drift rate limit, metrics and health;
- ``control``: the control topic on Kafka (its JSON messages are in
  ``streamrec.wire.control``, shared with the consumers);
- ``schedule``: settings.trainer.schedule as an APScheduler trigger;
- ``metrics``: the process's own metrics beside the shared TrainerMetrics;
- ``wiring``: the process put together from the settings (database, run service, schedule,
  control topic, metrics), for ``streamrec trainer`` and ``python -m trainer`` alike.

Run it with ``streamrec trainer`` or ``python -m trainer``; docs/training.md explains what a
run does.
"""
