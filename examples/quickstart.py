"""vulnsteer as a library, the walk-through of docs/API.md: pairs, activations read once, two methods fit from
them, a probe curve, then a vector applied to a score and to a generated answer, saved, and exported for
llama.cpp. Runs on the default model (Qwen2.5-Coder-0.5B; about a minute the first time it is converted);
CI runs it on a tiny random model:

    python examples/quickstart.py                      # the real default model
    python examples/quickstart.py --model tiny-qwen2   # a tiny random model, seconds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import vulnsteer as vs

# Three CWE-787 (out-of-bounds write) pairs: (vulnerable code, its fixed twin).
PAIRS = [
    ("void copy(char *s) { char b[8]; strcpy(b, s); }",
     "void copy(char *s) { char b[8]; strncpy(b, s, 7); b[7] = 0; }"),
    ("void set(int *a, int i) { a[i] = 1; }  /* a has 16 ints */",
     "void set(int *a, int i) { if (i >= 0 && i < 16) a[i] = 1; }  /* a has 16 ints */"),
    ("void fill(char *d, const char *s, size_t n) { memcpy(d, s, strlen(s)); }",
     "void fill(char *d, const char *s, size_t n) { memcpy(d, s, n < strlen(s) ? n : strlen(s)); }"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="vulnsteer-quickstart-")))
    args = ap.parse_args()

    lm = vs.load_model(args.model)
    acts = vs.read_activations(lm, PAIRS, cwe="CWE-787", language="c")      # one pass per file, cached
    caa = vs.train_steering_vector(lm, acts, layers=[-2], method="caa")     # no further passes
    pca = vs.train_steering_vector(lm, acts, layers=[-2], method="pca")
    curve = vs.probe_layers(acts, k=3)                                      # as `vulnsteer probe`
    print("probe AUROC per block:", " ".join(f"{a:.2f}" for a in curve.result.auroc),
          "| shuffled labels:", " ".join(f"{a:.2f}" for a in curve.control.mean(0)))
    print("caa . pca =", f"{float(caa.directions[caa.layers[0]] @ pca.directions[pca.layers[0]]):+.3f}")

    file = acts.records[0]  # a vulnerable file (in a real study: one the vector was not fit on)
    plain = vs.answer_score(lm, file)
    with caa.apply(lm, alpha=8.0, scope="answer"):                          # +8 sigma at the answer position
        steered = vs.answer_score(lm, file)
    with caa.apply(lm, alpha=4.0):
        answer = vs.generate_answer(lm, file, max_new_tokens=24)
    print(f"log P(yes) - log P(no): {plain:+.3f} unsteered, {steered:+.3f} steered; steered answer: {answer!r}")

    caa.save(args.out / "caa")                                              # .safetensors + .json
    caa.to_gguf(args.out / "caa.gguf", alpha=8.0)                           # llama.cpp --control-vector
    again = vs.SteeringVector.load(args.out / "caa", expect_model_hash=lm.source_hash)
    with again.apply(lm, alpha=8.0, scope="answer"):
        reloaded = vs.answer_score(lm, file)
    if reloaded != steered:
        raise SystemExit(f"the reloaded vector scored {reloaded} where the original scored {steered}")
    print(f"saved {again!r} to {args.out}/caa.*; the reloaded vector gives the same steered score")


if __name__ == "__main__":
    main()
