"""`python -m charters_dev.faultproxy`: the proxies of `--targets` until SIGTERM/SIGINT."""

import sys

from charters_dev.faultproxy.cli import main

main(sys.argv[1:])
