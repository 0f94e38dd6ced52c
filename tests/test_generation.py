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
