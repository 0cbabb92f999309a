"""Rendering only: markdown, CSV, JSON and figures of the results that :mod:`voxemo.experiment` computes."""
