"""``python -m openai_devstack`` runs the same console script as ``openai-devstack``."""

from openai_devstack.cli import main

if __name__ == "__main__":
    main()
