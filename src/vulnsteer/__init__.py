"""vulnsteer: probe and steer code LLMs for vulnerability detection, with honest evaluation.

The public API (docs/API.md); names load lazily, so `import vulnsteer` and the command line stay fast:

    import vulnsteer as vs
    lm = vs.load_model("qwen2.5-coder-0.5b")
    records = vs.load_records(["hand-crafted"])
    vector = vs.train_steering_vector(lm, records, layers=[12], method="caa")
    with vector.apply(lm, alpha=8.0, scope="answer"):
        print(vs.answer_score(lm, records[0]))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "vulnsteer.api",
    "LoadedModel": "vulnsteer.model.loading",
    "Record": "vulnsteer.data.records",
    "load_records": "vulnsteer.api",
    "answer_score": "vulnsteer.api",
    "generate_answer": "vulnsteer.api",
    "train_steering_vector": "vulnsteer.api",
    "SteeringVector": "vulnsteer.vectors.steering_vector",
    "RunConfig": "vulnsteer.experiments.config",
    "run": "vulnsteer.api",
    "StudySpec": "vulnsteer.experiments.study_spec",
    "study": "vulnsteer.api",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from vulnsteer.api import answer_score as answer_score
    from vulnsteer.api import generate_answer as generate_answer
    from vulnsteer.api import load_records as load_records
    from vulnsteer.api import run as run
    from vulnsteer.api import study as study
    from vulnsteer.experiments.study_spec import StudySpec as StudySpec
    from vulnsteer.api import train_steering_vector as train_steering_vector
    from vulnsteer.data.records import Record as Record
    from vulnsteer.experiments.config import RunConfig as RunConfig
    from vulnsteer.model.loading import LoadedModel as LoadedModel
    from vulnsteer.api import load_model as load_model
    from vulnsteer.vectors.steering_vector import SteeringVector as SteeringVector


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vulnsteer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
