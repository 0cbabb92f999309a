"""The applications on top: the command line, the HTTP service and its web page, live microphone input."""
