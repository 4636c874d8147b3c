"""``python -m openai_operator`` runs the same console script as ``openai-operator``."""

from openai_operator.cli import main

if __name__ == "__main__":
    main()
