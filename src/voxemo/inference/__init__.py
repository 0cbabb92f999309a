"""Prediction with a trained model: the classifier API and its torch and ONNX Runtime backends, model loading, batch
prediction, streams and timelines.
"""
