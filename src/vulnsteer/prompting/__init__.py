"""Prompts of one model on records: samples (one prompt per window of a long file), their pooled readings,
steered scores, and the context every command opens (stage between evaluation and experiments)."""
