"""``python -m spacy_syncabel <command>``: the same entry point as the ``spacy-syncabel`` script."""
from .cli import main

if __name__ == "__main__":
    main()
