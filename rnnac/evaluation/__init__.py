"""Evaluation: how good a model's completions are, against honest baselines.

`evaluate` measures top-k, keystroke savings and nats per character on a held-out split,
`baselines` holds the frequency trie and the character n-gram and Kneser-Ney models it is
compared with, `verdict` the lines that say whether rnnac beats the best of them, and
`typobench` the benchmark with mistyped prefixes.
"""
