"""A study's grid: presets and TOML specs expand into the right cells, each with its RunConfig; a bad key or
value is one line naming it, before torch loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from test_cli import _PROBE_TORCH  # the same child-process probe: did the CLI import torch?
from vulnsteer.experiments.study_spec import (
    SpecError,
    Split,
    StudySpec,
    cell_config,
    load_spec,
    model_slug,
    preset,
)
from vulnsteer.options import LongFiles, Method, Readout, SearchMode, Train

AUGMENTED = ("hand-crafted", "augmented-trivial", "augmented-non-trivial")


def test_the_quick_preset_is_the_default_model_two_readouts_hand_crafted_without_generation():
    spec = preset("quick")
    assert [c.name for c in spec.cells()] == ["qwen2.5-coder-0.5b__answer__hand-crafted__crossfit",
                                              "qwen2.5-coder-0.5b__code-mean__hand-crafted__crossfit"]
    cfg = cell_config(spec, spec.cells()[1])
    assert cfg.readout is Readout.CODE_MEAN and cfg.fit_on == () and cfg.test_on == ()
    assert cfg.baseline.subsets == ("hand-crafted",) and not cfg.baseline.generate
    assert cfg.n_side_by_side == 0 and cfg.n_fluency == 0 and cfg.stages == ("probe", "steer")
    full = cell_config(preset("full"), preset("full").cells()[4])
    assert full.readout is Readout.CODE_MEAN and full.baseline.subsets == ("hand-crafted",)
    assert cfg.steer == full.steer, "quick steers as the full preset's hand-crafted cells do (coarse-to-fine search)"


def test_the_full_preset_is_every_readout_times_six_splits_with_sven_within_a_budget():
    cells = preset("full").cells()
    assert len(cells) == 18 and [c.index for c in cells] == list(range(1, 19)) and {c.total for c in cells} == {18}
    assert cells[2].title == "cell 3/18 qwen2.5-coder-0.5b__code-last__planted__crossfit"
    assert cells[8].title == "cell 9/18 qwen2.5-coder-0.5b__code-last__sven__crossfit"
    configs = {c.name.split("__", 1)[1]: cell_config(preset("full"), c) for c in cells}
    assert set(configs) == {f"{r}__{s}" for r in ("answer", "code-mean", "code-last") for s in (
        "sven__crossfit", "sven__hand-crafted", "sven__real-world",
        "hand-crafted+augmented-trivial+augmented-non-trivial__real-world", "hand-crafted__crossfit",
        "planted__crossfit")}
    xfit = configs["code-last__sven__crossfit"]
    assert xfit.baseline.subsets == ("sven",) and (xfit.fit_on, xfit.test_on) == ((), ())
    assert xfit.readout is Readout.CODE_LAST
    assert (xfit.baseline.long_files, xfit.baseline.max_code_tokens, xfit.baseline.generate_sample) == (
        "skip-pairs", 384, 64)
    to_hc = configs["answer__sven__hand-crafted"]
    assert (to_hc.fit_long_files, to_hc.fit_max_code_tokens) == ("skip-pairs", 384)
    assert (to_hc.baseline.long_files, to_hc.baseline.max_code_tokens, to_hc.baseline.generate_sample) == (
        "windows", 1536, None), "the data under test is read whole"
    transfer = configs["answer__hand-crafted+augmented-trivial+augmented-non-trivial__real-world"]
    assert transfer.fit_on == AUGMENTED and transfer.test_on == ("real-world",)
    assert transfer.baseline.subsets == ("real-world",) and transfer.train == (Train.HOLDOUT,)
    assert transfer.fit_long_files is None and transfer.baseline.generate
    to_rw = configs["code-mean__sven__real-world"]
    assert (transfer.baseline.generate_sample, to_rw.baseline.generate_sample) == (16, 16), (
        "the real-world answers are generated for a sample of its files")
    assert to_rw.baseline.long_files == "windows", "the real-world files are read whole"
    assert configs["code-mean__planted__crossfit"].baseline.subsets == ("planted",)
    assert {(c.n_side_by_side, c.n_fluency, c.steer.search, c.steer.search_subsample) for c in configs.values()} == {
        (2, 4, "coarse-fine", 48)}


def test_a_toml_spec_expands_model_by_readout_by_split(tmp_path):
    (tmp_path / "pairs.jsonl").write_text("")
    spec_file = tmp_path / "study.toml"
    spec_file.write_text("""
models = ["tiny-qwen2", "tiny-falcon"]
readouts = ["code-mean", "answer"]
[[cells]]
fit = ["sven", "pairs.jsonl"]
test = ["real-world"]
[[cells]]
crossfit = ["hand-crafted", "augmented-trivial"]
[run]
folds = 3
layers = [1, 2]
methods = ["caa", "pca"]
add_alphas = [-4, 4.5]
seed = 7
train = ["augmented"]
search = "coarse-fine"
search_top = 2
search_subsample = 8
long_files = "skip-pairs"
generate_sample = 64
""")
    spec = load_spec(spec_file)
    names = [c.name for c in spec.cells()]
    # readouts innermost: a split's cells follow each other and share their passes (activations/memo.py)
    assert names == [f"{m}__{r}__{s}" for m in ("tiny-qwen2", "tiny-falcon")
                     for s in ("sven+pairs__real-world", "hand-crafted+augmented-trivial__crossfit")
                     for r in ("code-mean", "answer")]
    first, second = (cell_config(spec, c) for c in spec.cells()[1:3])
    assert first.fit_on == ("sven", str(tmp_path / "pairs.jsonl"))  # relative to the spec file
    assert first.train == (Train.HOLDOUT,) and second.train == (Train.AUGMENTED,)
    assert second.baseline.subsets == ("hand-crafted", "augmented-trivial") and second.readout is Readout.CODE_MEAN
    assert first.readout is Readout.ANSWER
    for cfg in (first, second):
        assert cfg.steer.k_folds == 3 and cfg.steer.layers == (1, 2) and cfg.steer.methods == (Method.CAA, Method.PCA)
        assert cfg.steer.add_alphas == (-4.0, 4.5) and cfg.steer.seed == 7 and cfg.baseline.seed == 7
        assert (cfg.steer.search, cfg.steer.search_top, cfg.steer.search_subsample) == (SearchMode.COARSE_FINE, 2, 8)
        assert cfg.baseline.long_files is LongFiles.SKIP_PAIRS and cfg.baseline.generate_sample == 64


def test_a_cell_sets_its_own_run_keys_and_the_fit_side_its_own_long_file_policy(tmp_path):
    spec_file = tmp_path / "study.toml"
    spec_file.write_text("""
[[cells]]
fit = ["sven"]
test = ["real-world"]
run = { fit_long_files = "skip", fit_max_code_tokens = 384, n_fluency = 0 }
[[cells]]
crossfit = ["hand-crafted"]
[run]
max_code_tokens = 1024
n_fluency = 2
""")
    spec = load_spec(spec_file)
    transfer, crossfit = (cell_config(spec, c) for c in spec.cells())
    assert (transfer.fit_long_files, transfer.fit_max_code_tokens, transfer.n_fluency) == ("skip", 384, 0)
    assert transfer.baseline.max_code_tokens == 1024 and transfer.baseline.long_files == "windows"
    assert (crossfit.fit_long_files, crossfit.fit_max_code_tokens, crossfit.n_fluency) == (None, None, 2)
    assert spec.settings()["cells"][0]["run"] == {"fit_long_files": "skip", "fit_max_code_tokens": 384, "n_fluency": 0}


def test_an_empty_toml_is_the_default_model_answer_readout_hand_crafted(tmp_path):
    (tmp_path / "s.toml").write_text("")
    assert load_spec(tmp_path / "s.toml") == StudySpec()


@pytest.mark.parametrize("text, message", [
    ('modles = ["tiny-qwen2"]', "unknown key 'modles'"),
    ('models = "tiny-qwen2"', "models = 'tiny-qwen2': expected a list of strings"),
    ('readouts = ["answer", "middle"]', "readouts: unknown readout 'middle'"),
    ('readouts = ["answer", "answer"]', "readouts lists <Readout.ANSWER: 'answer'> twice"),
    ("[[cells]]\nfit = [\"sven\"]", "cells[0]: needs crossfit = [...], or both fit"),
    ("[[cells]]\ncrossfit = [\"sven\"]\ntest = [\"real-world\"]", "cells[0]: give either crossfit"),
    ("[[cells]]\ncrossfit = [\"handcrafted\"]", "cells[0].crossfit: dataset 'handcrafted'"),
    ("[[cells]]\ncrossfit = []", "cells[0].crossfit is empty"),
    ("[[cells]]\ncrossfit = [\"sven\"]\nweight = 2", "cells[0]: unknown key 'weight'"),
    ("[[cells]]\nfit = [\"sven\"]\ntest = [\"gone.jsonl\"]", "cells[0].test: dataset"),
    ("[run]\nfold = 3", "[run] unknown key 'fold'"),
    ("[run]\nfolds = 2", "[run] folds = 2: --folds 2: cross-fitting needs at least 3"),
    ("[run]\nfolds = \"3\"", "[run] folds = '3': expected an integer"),
    ("[run]\ngenerate = 1", "[run] generate = 1: expected true or false"),
    ("[run]\nsearch = \"all\"", "[run] search = 'all': unknown searchmode 'all'"),
    ("[run]\nsearch_top = 0", "[run] search_top = 0: --search-top 0"),
    ("[run]\ngenerate_sample = 5", "[run] generate_sample = 5: --generate-sample 5: must be an even number"),
    ("[run]\nmethods = [\"caa\", \"magic\"]", "[run] methods = ['caa', 'magic']: unknown method 'magic'"),
    ("[run]\nlayers = [-1]", "[run] layers = [-1]: --layers: block -1 is negative"),
    ("[run]\ndevice = \"tpu\"", "[run] device = 'tpu': unknown device 'tpu'"),
    ("[run]\nadd_alphas = [1, \"x\"]", "[run] add_alphas = [1, 'x']: expected a list of numbers"),
    ("run = 3", "[run]: expected a table of [run] keys"),
    ("[[cells]]\ncrossfit = [\"sven\"]\nrun = { fold = 3 }", "cells[0].run unknown key 'fold'"),
    ("[[cells]]\ncrossfit = [\"sven\"]\nrun = { fit_long_files = \"skip\" }", "a cross-fitted cell (sven__crossfit) has none"),
    ("[[cells]]\ncrossfit = [\"sven\"]\n[[cells]]\ncrossfit = [\"sven\"]\nrun = { n_fluency = 1 }",
     "two cells read the same data (sven__crossfit)"),
    ("models = [", "not valid TOML"),
])
def test_a_bad_key_or_value_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_a_missing_spec_file_says_so(tmp_path):
    with pytest.raises(SpecError, match="cannot read it"):
        load_spec(tmp_path / "nope.toml")


def test_two_models_with_one_folder_name_are_refused(tmp_path):
    (tmp_path / "qwen").mkdir()
    assert model_slug(str(tmp_path / "qwen") + "/") == "qwen" and model_slug("bigcode/starcoderbase-1b") == \
        "bigcode-starcoderbase-1b"
    with pytest.raises(SpecError, match="share the folder name 'qwen'"):
        StudySpec(models=(str(tmp_path / "qwen"), "qwen"))
    with pytest.raises(SpecError, match="splits is empty"):
        StudySpec(splits=())
    assert Split(("sven",), ("hand-crafted",)).label == "sven__hand-crafted"




@pytest.mark.parametrize("text, args, message", [
    ("[run]\nfolds = 2", [], "[run] folds = 2"),
    ("[run]\nscope = \"middle\"", [], "[run] scope = 'middle': unknown sweepscope 'middle'"),
    ("[run]\nlayers = [30]", [], "--layers: block 30 out of range"),  # checked against the model's shape
    ("", ["--executor", "slurm"], "unknown executor 'slurm'"),
    ("", ["--preset", "quick"], "give --preset or --spec, not both"),
])
def test_the_study_command_checks_the_spec_before_torch_loads(data_root, tmp_path, text, args, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    out = tmp_path / "study"
    proc = subprocess.run([sys.executable, "-c", _PROBE_TORCH, "study", "--spec", str(path), *args, "--data",
                           str(data_root), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and proc.stderr.strip().splitlines() == errors, proc.stderr
    assert "torch imported: False" in proc.stdout
    assert not out.exists(), "nothing is written before the spec is checked"
