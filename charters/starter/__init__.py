"""The `charters` command line: booking, status, operator signals, the local stack and the demo."""
