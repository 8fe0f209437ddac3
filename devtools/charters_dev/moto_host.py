"""Runs moto in server mode for the local stack, behaving as AWS documents where the product
relies on it (moto_fidelity.py)."""

from __future__ import annotations

import sys

from moto.server import main

from charters_dev import moto_fidelity

if __name__ == "__main__":
    moto_fidelity.apply()
    main(sys.argv[1:])
