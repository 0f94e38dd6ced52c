"""vulnsteer as a library: load a model and data, fit a steering vector, score a file with and without it,
save the vector and load it back. Runs on the default model (Qwen2.5-Coder-0.5B, about a minute the first
time it is converted); CI runs it on a tiny random model:

    python examples/quickstart.py                      # the real default model
    python examples/quickstart.py --model tiny-qwen2   # a tiny random model, seconds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import vulnsteer as vs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="vulnsteer-quickstart-")))
    args = ap.parse_args()

    lm = vs.load_model(args.model)
    records = vs.load_records(["hand-crafted"], cwes=["CWE-787", "CWE-89"])
    train, test = records[:-2], records[-2:]  # fit on some scenarios, try the vector on another one
    layer = lm.parts.n_layers // 2
    vector = vs.train_steering_vector(lm, train, layers=[layer], method="caa")

    for record in test:
        plain = vs.answer_score(lm, record)
        with vector.apply(lm, alpha=8.0, unit="sigma", scope="answer"):
            steered = vs.answer_score(lm, record)
        print(f"{record.id} (label {record.label}): log P(yes) - log P(no) {plain:+.3f} unsteered, "
              f"{steered:+.3f} steered at block {layer} by +8 sigma")

    stem = args.out / f"caa-block{layer}"
    vector.save(stem)
    again = vs.SteeringVector.load(stem, expect_model_hash=lm.source_hash)
    with again.apply(lm, alpha=8.0, unit="sigma", scope="answer"):
        reloaded = vs.answer_score(lm, test[-1])
    if reloaded != steered:
        raise SystemExit(f"the reloaded vector scored {reloaded} where the original scored {steered}")
    print(f"saved {stem}.safetensors and {stem}.json (model {again.model_id}, fit on {len(again.record_ids)} "
          "files); the reloaded vector gives the same steered score")


if __name__ == "__main__":
    main()
