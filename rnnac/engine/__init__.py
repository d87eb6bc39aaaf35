"""The engine: the network and its exact gradients, independent of files and of search.

`vocab` turns words into token ids and padded batches (the one-hot inputs of seed 000),
`model` holds U, W, b, V, c and runs the recurrence z_t = W a_{t-1} + U x_t + b,
`bptt` differentiates the summed loss in reverse (seed 004, eqs. 84-88), `rtrl` the same
forward in time (seed 000), `optim` updates the parameters and `blas` pins BLAS threads.
Nothing here imports the rest of rnnac except `rnnac.errors`.
"""
