from charters.starter.cli import main

main()
