"""vulnsteer: probe and steer code LLMs for vulnerability detection, with honest evaluation.

The public API (docs/API.md); names load lazily, so `import vulnsteer` and the command line stay fast:

    import vulnsteer as vs
    lm = vs.load_model("qwen2.5-coder-0.5b")
    acts = vs.read_activations(lm, vs.load_records("hand-crafted"))
    vector = vs.train_steering_vector(lm, acts, layers=[12], method="caa")
    with vector.apply(lm, alpha=8.0, scope="answer"):
        print(vs.answer_score(lm, acts.records[0]))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vulnsteer.version import __version__ as __version__

_EXPORTS = {
    "load_model": "vulnsteer.api",
    "wrap_model": "vulnsteer.api",
    "LoadedModel": "vulnsteer.model.loading",
    "Record": "vulnsteer.data.records",
    "load_records": "vulnsteer.api",
    "read_activations": "vulnsteer.api_notebook",
    "probe_layers": "vulnsteer.api_notebook",
    "answer_score": "vulnsteer.api_notebook",
    "answer_scores": "vulnsteer.api_notebook",
    "generate_answer": "vulnsteer.api_notebook",
    "train_steering_vector": "vulnsteer.api_notebook",
    "SteeringVector": "vulnsteer.vectors.steering_vector",
    "RunConfig": "vulnsteer.experiments.config",
    "run": "vulnsteer.api",
    "StudySpec": "vulnsteer.experiments.study_spec",
    "study": "vulnsteer.api",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from vulnsteer.api import load_model as load_model
    from vulnsteer.api import load_records as load_records
    from vulnsteer.api import run as run
    from vulnsteer.api import study as study
    from vulnsteer.api import wrap_model as wrap_model
    from vulnsteer.api_notebook import answer_score as answer_score
    from vulnsteer.api_notebook import answer_scores as answer_scores
    from vulnsteer.api_notebook import generate_answer as generate_answer
    from vulnsteer.api_notebook import probe_layers as probe_layers
    from vulnsteer.api_notebook import read_activations as read_activations
    from vulnsteer.api_notebook import train_steering_vector as train_steering_vector
    from vulnsteer.data.records import Record as Record
    from vulnsteer.experiments.config import RunConfig as RunConfig
    from vulnsteer.experiments.study_spec import StudySpec as StudySpec
    from vulnsteer.model.loading import LoadedModel as LoadedModel
    from vulnsteer.vectors.steering_vector import SteeringVector as SteeringVector

def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vulnsteer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
