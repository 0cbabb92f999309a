"""Experiments that compute and return results: splits, evaluation, metrics, calibration, cross-corpus scoring,
several corpora, audio analysis and the eGeMAPS baseline. Nothing here writes a report.
"""
