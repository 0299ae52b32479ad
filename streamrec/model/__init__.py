"""The EfficientRec model: pure domain code (torch and numpy), no Kafka, no SQL.

One idea per module:

- ``hashing``, ``features``: stable hashed ids and "name=value" tokens; item feature schema.
- ``architecture``, ``towers``, ``cluster_heads``, ``encoder``: the torch modules and the
  plain-data config that rebuilds them.
- ``efficientrec``: ``EfficientRec``, the trained encoder with numpy in and out, saved as
  (config, weights bytes).
- ``pooling``: the running sums s_u, n_u and their exact incremental update.
- ``memberships``, ``cluster_report``: top-M memberships; cluster sizes and entropy.
- ``contributions``, ``decay``, ``statistics``: additive cluster statistics and their deltas.
- ``shortlists``, ``voting``: shortlist weights, top-L per cluster, cluster voting.
- ``serving``: the serving model of a version, its item vectors and targets cached.
- ``interaction_rule``: which interaction events change the stored state (idempotence, order).
- ``user_states``, ``user_attributes``: a batch's effect on users' pooled sums, profiles,
  memberships and demographics.
- ``shortlist_refresh``: when a consumer refreshes the shortlists its deltas changed.
- ``stream``, ``memory_state``: ``EfficientRecStream``, the one streaming model (learn_many,
  recommend_many, recommend_one), and its state in memory.
- ``table_replay``: ``EfficientRecRecommender``, the stream fed from a table (evaluation).
- ``training``: samplers, losses and the training loop.

docs/model.md describes the design and the measurements behind the defaults.
"""
