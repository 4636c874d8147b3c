"""openai-operator: declarative OpenAI projects and API keys for Kubernetes.

Importing this package has no side effects; clients are built when a command starts.
"""

__version__ = "0.1.0"
