"""Evaluation: how good a model's completions are, against honest baselines.

`evaluate` measures top-k, keystroke savings and nats per character on a held-out split,
`baselines` holds the frequency trie and the character n-gram and Kneser-Ney models it is
compared with, and `typobench` the benchmark with mistyped prefixes.
"""
