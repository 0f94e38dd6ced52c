"""Tiny randomly initialised models built from configs: the offline stand-ins used by the tests, and the
`tiny-<arch>` model names (`vulnsteer run --model tiny-qwen2`: a smoke run with no download).

They exercise every code path that depends on architecture (block layout, output shapes, caches) at
a size that runs in milliseconds. The tokenizer is a small byte-level BPE trained on the spot so that
prompts, chat rendering and yes/no word lookup behave like a real tokenizer's.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from vulnsteer.model.sources import TINY_CONTEXT, TINY_LAYERS

TINY_SEED = 0  # the seed `tiny-<arch>` model names are built with

_VOCAB = 512
_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_config(model_type: str, n_layers: int = TINY_LAYERS, d_model: int = 64):
    """A config for `model_type` with a few small layers."""
    common = dict(vocab_size=_VOCAB, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    if model_type in ("gpt2", "gpt_bigcode"):
        extra: dict = dict(n_layer=n_layers, n_embd=d_model, n_head=4, n_positions=TINY_CONTEXT)
        if model_type == "gpt_bigcode":
            extra["multi_query"] = True
    elif model_type == "falcon":
        # the Falcon-7B layout (parallel attention and MLP, one shared key/value head), rotary positions
        extra = dict(num_hidden_layers=n_layers, hidden_size=d_model, num_attention_heads=4, max_position_embeddings=TINY_CONTEXT)
    elif model_type == "gpt_neox":
        extra = dict(
            num_hidden_layers=n_layers, hidden_size=d_model, num_attention_heads=4,
            intermediate_size=4 * d_model, max_position_embeddings=TINY_CONTEXT,
        )
    else:
        extra = dict(
            num_hidden_layers=n_layers, hidden_size=d_model, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=2 * d_model, max_position_embeddings=TINY_CONTEXT,
        )
        if model_type in ("gemma", "gemma2", "gemma3_text"):
            extra["head_dim"] = d_model // 4
        if model_type == "gemma3_text":
            # Gemma 3's alternating local/global attention with two rotary bases; a window shorter than
            # the test prompts so the sliding layers really drop old tokens (and their cache crops).
            extra["layer_types"] = (["sliding_attention", "full_attention"] * (n_layers // 2)
                                    + ["sliding_attention"] * (n_layers % 2))
            extra["sliding_window"] = 8
            extra["query_pre_attn_scalar"] = d_model // 4
        if model_type == "starcoder2":
            # Its default 0.018 happens to make seed 0 predict end-of-text first, which would end every
            # generation test at once; 0.02 is what the other tiny configs use.
            extra["initializer_range"] = 0.02
    return AutoConfig.for_model(model_type, **common, **extra)


def tiny_hash(model_type: str, seed: int = TINY_SEED) -> str:
    """The source hash of `tiny-<model_type>`: sha256 of its config (sorted JSON) and seed."""
    config = json.dumps(tiny_config(model_type).to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(f"{config}\nseed={seed}\n".encode()).hexdigest()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with a chat template, trained on a few lines of code and English."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "int main(void) { char buf[16]; strcpy(buf, argv[1]); return 0; }",
        "Answer yes or no. Yes, the code is vulnerable. No, the code is secure.",
        "def query(db, name): return db.execute('SELECT * FROM users WHERE name = ?', (name,))",
        "You are a helpful security expert. Does this code contain a vulnerability?",
    ]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(  # show_progress=False: its (empty) bars printed blank lines to stdout
        vocab_size=_VOCAB, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", bos_token=None
    )
    fast.chat_template = _CHAT_TEMPLATE
    return fast


def tiny_model(model_type: str, seed: int = 0, n_layers: int = TINY_LAYERS) -> PreTrainedModel:
    """A randomly initialised float32 model of `model_type`, in eval mode."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(model_type, n_layers=n_layers), dtype=torch.float32)
    return model.eval()


def save_tiny(model_type: str, directory: Path, seed: int = 0) -> Path:
    """Write a tiny model and tokenizer as a local HF directory (what `--model DIR` accepts)."""
    directory.mkdir(parents=True, exist_ok=True)
    tiny_model(model_type, seed=seed).save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory
