"""The worker process: wiring of clients to activities, and the run loop."""
