"""``python -m brainmodels`` runs the command-line interface."""

from brainmodels.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
