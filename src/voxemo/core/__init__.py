"""The ground floor: errors, labels, configuration, per-utterance records, the version and the process pool. Imports
nothing else from voxemo.
"""
