from __future__ import annotations

from vulnsteer.evaluation.generation import generate_answers


def _prompts(tokenizer):
    texts = ["int main", "Answer yes or no: is strcpy(buf, argv[1]) safe?", "x"]
    return [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
            for t in texts]


def test_batched_generation_equals_one_by_one(model, tokenizer):
    prompts = _prompts(tokenizer)
    batched = generate_answers(model, tokenizer, prompts, max_new_tokens=6, batch_size=3)
    single = [generate_answers(model, tokenizer, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.n_new_tokens <= 6 for g in batched)


def test_caller_order_is_kept_with_or_without_sorting(model, tokenizer):
    prompts = _prompts(tokenizer)
    a = generate_answers(model, tokenizer, prompts, max_new_tokens=4, batch_size=1)
    b = generate_answers(model, tokenizer, prompts, max_new_tokens=4, batch_size=3, sort_by_length=False)
    assert [g.text for g in a] == [g.text for g in b]


def test_decoding_from_cached_prefixes_equals_generate(model, tokenizer):
    from vulnsteer.activations.passes import run_prompt
    from vulnsteer.evaluation.generation import can_decode_from_passes, generate_from_passes
    from vulnsteer.model.architecture import model_parts

    prompts = _prompts(tokenizer) + ["<|im_start|>user\nint x = 1; int y = x + 2;<|im_end|>\n<|im_start|>assistant\n"]
    ids = [tokenizer(p, return_tensors="pt", add_special_tokens=False).input_ids for p in prompts]
    states = [run_prompt(model, model_parts(model), x) for x in ids]
    assert can_decode_from_passes(states)
    reference = [generate_answers(model, tokenizer, [p], max_new_tokens=7, batch_size=1)[0] for p in prompts]
    for batch_size in (1, 4):
        got = generate_from_passes(model, tokenizer, states, ids, max_new_tokens=7, batch_size=batch_size)
        assert [g.text for g in got] == [g.text for g in reference]
        assert [g.n_new_tokens for g in got] == [g.n_new_tokens for g in reference]


def test_rows_that_stop_early_leave_the_batch_without_changing_the_others(model, tokenizer):
    from vulnsteer.activations.passes import run_prompt
    from vulnsteer.evaluation.generation import generate_from_passes
    from vulnsteer.model.architecture import model_parts

    prompts = _prompts(tokenizer)
    ids = [tokenizer(p, return_tensors="pt", add_special_tokens=False).input_ids for p in prompts]
    first = model.generate(ids[0], max_new_tokens=4, do_sample=False, eos_token_id=None, pad_token_id=0)
    model.generation_config.eos_token_id = int(first[0, ids[0].shape[1] + 2])  # prompt 0 stops after 2 tokens
    states = [run_prompt(model, model_parts(model), x) for x in ids]
    reference = [generate_answers(model, tokenizer, [p], max_new_tokens=8, batch_size=1)[0] for p in prompts]
    got = generate_from_passes(model, tokenizer, states, ids, max_new_tokens=8, batch_size=3)
    assert reference[0].n_new_tokens <= 2 and not reference[0].hit_limit
    assert [g.text for g in got] == [g.text for g in reference]
    assert [g.hit_limit for g in got] == [g.hit_limit for g in reference]


def test_answer_interventions_equal_answer_scope_steering_in_generate(model, tokenizer):
    import torch

    from vulnsteer.activations.passes import run_prompt
    from vulnsteer.evaluation.generation import generate_from_passes
    from vulnsteer.model.architecture import model_parts
    from vulnsteer.vectors.hooks import steer
    from vulnsteer.vectors.operators import Intervention

    prompt = _prompts(tokenizer)[1]
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    parts = model_parts(model)
    iv = Intervention(1, "add", torch.randn(parts.d_model, generator=torch.Generator().manual_seed(3)), 8.0)
    state = run_prompt(model, parts, ids)
    with steer(model, [iv], scope="answer", prompt_len=ids.shape[1]):
        reference = generate_answers(model, tokenizer, [prompt], max_new_tokens=6, batch_size=1)[0]
    got = generate_from_passes(model, tokenizer, [state], [ids], max_new_tokens=6, answer_interventions=[iv])[0]
    plain = generate_from_passes(model, tokenizer, [state], [ids], max_new_tokens=6)[0]
    assert got.text == reference.text
    assert got.text != plain.text, "a strong edit at the answer position must change the greedy answer"
