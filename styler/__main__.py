"""``python -m styler`` runs the command-line interface."""

from styler.cli import main

if __name__ == "__main__":
    main()
