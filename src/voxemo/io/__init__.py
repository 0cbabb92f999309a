"""Files: reading audio, finding inputs, manifests, atomic writes and digests, the feature cache and the model-folder
format.
"""
