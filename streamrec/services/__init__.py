"""The service layer: thin use cases between the domain and the edges (Kafka, SQL, CLI).

- ``ingest``: ``IngestService.apply(records)`` applies one polled batch in one transaction and
  returns what to publish (``batch.BatchResult``);
- ``triage``: validation of a batch into interactions, item updates and dead letters;
- ``recommending``: shortlists, cluster voting and re-ranking from stored state;
- ``dataset_training``: train a model on a dataset, register it and make it active;
- ``training_run``, ``rebuild``, ``run_lock``: the trainer's runs, version switches and lock;
- ``status`` and ``snapshot``: what operators and tests read back.
"""
