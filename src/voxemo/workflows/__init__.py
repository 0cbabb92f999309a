"""Library workflows that compute and write: the whole study, training a model folder, an evaluation, a cross-corpus
run, an audio analysis. Each command of the CLI calls one of these.
"""
