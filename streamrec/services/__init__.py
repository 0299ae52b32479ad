"""The service layer: thin use cases between the domain and the edges (Kafka, SQL, CLI).

- ``ingest``: ``IngestService.apply(records)`` applies one polled batch in one transaction and
  returns what to publish (``batch.BatchResult``);
- ``triage``: validation of a batch into interactions, item updates and dead letters;
- ``interactions``: the idempotence and ordering rule for stored interactions;
- ``user_states``: a batch's effect on user state (the statistics' deltas come from the model);
- ``recommending``: shortlists, cluster voting and re-ranking from stored state;
- ``model_cache``: the serving model per version, with its item vectors and targets cached;
- ``dataset_training``: train a model on a dataset, register it and make it active;
- ``training_run``, ``rebuild``, ``run_lock``: the trainer's runs, version switches and lock;
- ``status`` and ``snapshot``: what operators and tests read back.
"""
