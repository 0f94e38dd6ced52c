"""The GGUF control-vector export, loaded and applied by llama.cpp itself (llama-cpp-python 0.3.36, the
llama.cpp it vendors) on the Q4_K_M file the default model is dequantised from (marked real_model).

What llama.cpp does with a control vector (vendor/llama.cpp in the 0.3.36 sdist):
- common/common.cpp `common_control_vector_load_one` reads `direction.<k>` (k >= 1; k = 0 is refused) into a
  flat buffer at offset n_embd * (k - 1) ("layer 1 at [0]"), times the file's scale;
- src/llama-adapter.cpp `llama_adapter_cvec::apply` copies that buffer into one tensor per block il = 1 ..
  n_layer - 1 and `apply_to(cur, il)` adds tensor il where il_start <= il <= il_end (both inclusive);
- src/models/qwen2.cpp adds it after block il's second residual add (`cur = build_cvec(cur, il)`, "l_out"),
  for every token in the batch.
So direction.k steers the output of 0-based block k, vulnsteer's layer k, at every token (scope "all").

llama-cpp-python binds `llama_set_adapter_cvec` but not common's file loader, so `load_control_vector` below
reads the file with llama.cpp's own GGUF parser (ggml-base, through ctypes) and packs it as the loader does.
The command that prints the side-by-side shifts:
    VULNSTEER_DATA=<data root> PYTHONPATH=src python3 -m pytest tests/test_llama_cpp.py -q -s
"""

from __future__ import annotations

import ctypes
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import vulnsteer as vs
from vulnsteer.api_notebook import _build, _words

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python is not installed: bash scripts/setup.sh --dev"),
]

LAYERS = list(range(8, 16))  # blocks 8..15 of 24: mid-depth, where the probes read the most
# In sigma units, at every token of the prompt: vulnsteer moves these two answers by about 0.2 to 0.4 at +-4
# (and by under 0.1 at +-1), large beside llama.cpp's rounding of a shift yet still in the linear range.
STRENGTHS = (-4.0, 4.0)
TRAIN_CWES, TEST_CWE = ("CWE-787", "CWE-89"), "CWE-22"


def load_control_vector(llama_cpp, path: Path, n_embd: int, scale: float = 1.0) -> np.ndarray:
    """common_control_vector_load_one, line for line, on llama.cpp's GGUF parser: the flat buffer (block 1
    first) that `llama_set_adapter_cvec` takes."""
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))

    class InitParams(ctypes.Structure):
        _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p))]

    lib.gguf_init_from_file.argtypes, lib.gguf_init_from_file.restype = [ctypes.c_char_p, InitParams], ctypes.c_void_p
    lib.gguf_get_n_tensors.argtypes, lib.gguf_get_n_tensors.restype = [ctypes.c_void_p], ctypes.c_int64
    lib.gguf_get_tensor_name.argtypes, lib.gguf_get_tensor_name.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_char_p
    lib.ggml_get_tensor.argtypes, lib.ggml_get_tensor.restype = [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_void_p
    lib.ggml_get_data_f32.argtypes, lib.ggml_get_data_f32.restype = [ctypes.c_void_p], ctypes.POINTER(ctypes.c_float)
    lib.ggml_nelements.argtypes, lib.ggml_nelements.restype = [ctypes.c_void_p], ctypes.c_int64
    lib.ggml_n_dims.argtypes, lib.ggml_n_dims.restype = [ctypes.c_void_p], ctypes.c_int
    lib.gguf_get_tensor_type.argtypes, lib.gguf_get_tensor_type.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_int
    lib.gguf_free.argtypes, lib.ggml_free.argtypes = [ctypes.c_void_p], [ctypes.c_void_p]
    ggml_ctx = ctypes.c_void_p()
    gguf_ctx = lib.gguf_init_from_file(str(path).encode(), InitParams(False, ctypes.pointer(ggml_ctx)))
    assert gguf_ctx, f"llama.cpp cannot parse {path}"
    data = np.zeros(0, dtype=np.float32)
    try:
        for i in range(lib.gguf_get_n_tensors(gguf_ctx)):
            name = lib.gguf_get_tensor_name(gguf_ctx, i)
            m = re.fullmatch(rb"direction\.(\d+)", name)
            assert m and int(m.group(1)) > 0, f"llama.cpp refuses tensor {name!r}"
            k, tensor = int(m.group(1)), lib.ggml_get_tensor(ggml_ctx, name)
            assert lib.gguf_get_tensor_type(gguf_ctx, i) == 0 and lib.ggml_n_dims(tensor) == 1  # GGML_TYPE_F32, 1-D
            assert lib.ggml_nelements(tensor) == n_embd
            data = np.pad(data, (0, max(0, n_embd * k - data.size)))
            data[n_embd * (k - 1): n_embd * k] += np.ctypeslib.as_array(lib.ggml_get_data_f32(tensor), (n_embd,)) * scale
    finally:
        lib.gguf_free(gguf_ctx)
        lib.ggml_free(ggml_ctx)
    return data


@pytest.fixture(scope="module")
def setup(real_model, data_root):
    """The vector (CAA, blocks LAYERS, trained on two CWEs' hand-crafted files), the other CWE's vulnerable and
    patched file, and the same Q4_K_M GGUF in llama.cpp."""
    from llama_cpp import Llama

    with pytest.MonkeyPatch.context() as mp:  # prompts name the CWE from the data root, as `vulnsteer run` does
        mp.setenv("VULNSTEER_DATA", str(data_root))
        yield _setup(real_model, data_root, Llama)


def _setup(real_model, data_root: Path, Llama):
    records = vs.load_records(["hand-crafted"], cwes=[*TRAIN_CWES, TEST_CWE], data=data_root)
    train = [r for r in records if r.cwe in TRAIN_CWES]
    test = [next(r for r in records if r.cwe == TEST_CWE and r.label == y) for y in (1, 0)]
    acts = vs.read_activations(real_model, train)  # the user's activation cache, as the API reads them
    vector = vs.train_steering_vector(real_model, acts, layers=LAYERS, method="caa")
    assert real_model.gguf_path is not None and real_model.gguf_path.is_file()
    llm = Llama(model_path=str(real_model.gguf_path), n_ctx=4096, n_batch=512, n_threads=2, seed=0, verbose=False)
    return vector, test, llm


def llama_score(llm, ids: list[int], words, cvec: np.ndarray | None, layer_range: tuple[int, int] = (1, 23)) -> float:
    """log P(yes) - log P(no) at the last prompt token in llama.cpp, with `cvec` applied over `layer_range`."""
    from llama_cpp import llama_cpp as C

    if cvec is None:
        assert C.llama_set_adapter_cvec(llm.ctx, None, 0, llm.n_embd(), -1, -1) == 0
    else:
        buf = np.ascontiguousarray(cvec, dtype=np.float32)
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        assert C.llama_set_adapter_cvec(llm.ctx, ptr, buf.size, llm.n_embd(), *layer_range) == 0
    llm.reset()
    llm.eval(ids)
    logits = np.ctypeslib.as_array(C.llama_get_logits_ith(llm.ctx, -1), (llm.n_vocab(),)).copy()
    return float(words.score(torch.from_numpy(logits)))


def test_an_exported_vector_moves_llama_cpps_answer_as_it_moves_vulnsteers(real_model, setup, tmp_path):
    import llama_cpp

    vector, test, llm = setup
    words = _words(real_model)
    rows = []
    for record in test:
        (sample,) = _build(real_model, [record], "S1")
        (window,) = sample.windows
        ids = window.input_ids[0].tolist()
        # The same text tokenised by llama.cpp from the GGUF's own vocabulary: the same tokens.
        assert llm.tokenize(window.prompt.encode(), add_bos=False, special=True) == ids
        plain_vs, plain_cpp = vs.answer_score(real_model, record), llama_score(llm, ids, words, None)
        for alpha in STRENGTHS:
            path = vector.to_gguf(tmp_path / f"v{alpha:+g}.gguf", alpha=alpha)
            with vector.apply(real_model, alpha=alpha, scope="all"):
                steered_vs = vs.answer_score(real_model, record)
            cvec = load_control_vector(llama_cpp, path, llm.n_embd())
            steered_cpp = llama_score(llm, ids, words, cvec, (min(LAYERS), max(LAYERS)))
            rows.append((record.id, alpha, plain_vs, plain_cpp, steered_vs - plain_vs, steered_cpp - plain_cpp))
        # The layer range gates by the same block numbers: blocks past the vector's last leave the answer as it was.
        assert llama_score(llm, ids, words, cvec, (max(LAYERS) + 1, 23)) == pytest.approx(plain_cpp, abs=1e-3)
        assert llama_score(llm, ids, words, None) == pytest.approx(plain_cpp, abs=1e-3)  # cleared: unsteered again
    print("\nrecord, alpha (sigma), unsteered vulnsteer / llama.cpp, shift vulnsteer / llama.cpp, ratio")
    for rid, alpha, pv, pc, sv, sc in rows:
        print(f"{rid}  {alpha:+.1f}  {pv:+.3f} / {pc:+.3f}  {sv:+.3f} / {sc:+.3f}  {sc / sv:.2f}")
    # vulnsteer computes in float32 on the dequantised weights; llama.cpp on the Q4_K_M blocks themselves, its
    # matmuls rounding the activations to 8 bits, so it is close, not equal. Measured on two builds of 0.3.36
    # (setup.sh's portable AVX2 one; a native AVX-512 one): unsteered scores 0.01 to 0.11 off vulnsteer's, and
    # every shift of the same sign, each 0.50x to 1.23x vulnsteer's, the rounding moving a steered score by up
    # to ~0.1 as well. The swing from -alpha to +alpha cancels what rounding adds to both alike (and the
    # response's curvature): 0.85x to 1.05x. So: every shift of the same sign as vulnsteer's and as alpha, the
    # swing within [0.5, 2] of vulnsteer's, the unsteered scores within 0.3.
    for record, (minus, plus) in zip(test, zip(rows[::2], rows[1::2])):
        assert abs(minus[2] - minus[3]) < 0.3, record.id
        assert all(np.sign(r[4]) == np.sign(r[5]) == np.sign(r[1]) for r in (minus, plus)), record.id
        swing_vs, swing_cpp = plus[4] - minus[4], plus[5] - minus[5]
        print(f"{record.id}  swing vulnsteer {swing_vs:+.3f}, llama.cpp {swing_cpp:+.3f}, ratio {swing_cpp / swing_vs:.2f}")
        assert 0.5 <= swing_cpp / swing_vs <= 2.0, record.id
