"""One module per external system; each exposes a class whose methods are activities and whose
clients are injected by `charters.worker.wiring`."""
