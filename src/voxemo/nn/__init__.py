"""The torch network: the CNN and its ensemble, the training loop and ONNX export. Everything that imports torch at
module level lives here.
"""
