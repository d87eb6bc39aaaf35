"""Training: from a config or a word list to a run folder with checkpoints.

`config` defines and checks every field, `quickstart` turns `rnnac train TARGET` into a
config sized to the list, `trainer` runs the loop (resume, signals, validation, the final
lambda fit), `rundir` owns the locked run folder, the config saved in it and its metrics,
and `memory` checks that a run fits. It sits above inference only for the mixture's lambda fit at the end of a run.
"""
