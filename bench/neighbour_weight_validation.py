"""Item-neighbour fusion weight and recency half-life on validation users only.

The validation users come from the training split of `streamrec eval` (seed 0,
streamrec.evaluation.splits.validation_split); the test users are never looked at. The
streamrec method is fitted once with the neighbours on, then measured with them off and at
each (weight, half-life) through reconfigure (the fitted model and counts are unchanged).

    STREAMREC_DATASETS_DIR=... STREAMREC_SERVING__NEIGHBOURS=true \
        python bench/neighbour_weight_validation.py ml-1m cold-users OUT.json

(with STREAMREC_CONFIG_FILE=configs/sequential.toml, STREAMREC_MODEL__CLUSTERS=100 and loo
for Amazon Beauty).
"""

import json
import sys
from pathlib import Path

from streamrec.config import load_settings
from streamrec.datasets.registry import load_dataset
from streamrec.evaluation.harness import list_length, quality, recommend_checked
from streamrec.evaluation.methods import MethodOptions, build_method
from streamrec.evaluation.splits import split_for, validation_split

dataset_name, protocol, out = sys.argv[1], sys.argv[2], sys.argv[3]
settings = load_settings()
assert settings.serving.neighbours, "run with STREAMREC_SERVING__NEIGHBOURS=true"
dataset = load_dataset(dataset_name, settings)
split = split_for(protocol, dataset, 0)
validation = validation_split(split, dataset, 0)
print(validation.summary(), flush=True)
recommender = build_method(
    "streamrec", MethodOptions(dataset_name=dataset_name, seed=0, progress=False), settings
)
recommender.fit(validation.train, dataset.items, dataset.user_attributes)
histories = [case.history for case in validation.cases]
count = list_length(protocol)
metric = {"cold-users": "precision@50", "loo": "hr@20"}[protocol]
catalogue = validation.training_items()
grid = [("off", None, None)] + [("on", w, h) for h in (5.0, None) for w in (0.1, 0.3, 0.5, 0.7)]
rows = []
for mode, weight, half in grid:
    if mode == "off":
        recommender.reconfigure(neighbours=False)
    else:
        recommender.reconfigure(
            neighbours=True, neighbour_weight=weight, neighbour_half_life_items=half
        )
    recs, _ = recommend_checked(recommender, histories, count)
    scores = quality(protocol, validation.cases, recs, catalogue)
    rows.append(
        {
            "mode": mode,
            "weight": weight,
            "half_life": half,
            metric: scores[metric],
            "scores": scores,
        }
    )
    print(mode, weight, half, round(scores[metric], 4), flush=True)

Path(out).write_text(
    json.dumps(
        {
            "dataset": dataset_name,
            "protocol": protocol,
            "validation": validation.summary(),
            "rows": rows,
        },
        indent=1,
    )
)
