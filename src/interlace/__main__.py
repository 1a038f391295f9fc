"""``python -m interlace`` runs the command line."""

from interlace.cli.main import main

main()
