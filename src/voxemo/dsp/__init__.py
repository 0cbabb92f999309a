"""Pure signal processing: audio operations, log-mel features, window scoring, augmentation and voice-activity
detection. Arrays in, arrays out; no files.
"""
