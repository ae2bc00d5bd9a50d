"""``python -m flare_xlt.cli`` = ``flare``."""

from flare_xlt.cli import main

main()
