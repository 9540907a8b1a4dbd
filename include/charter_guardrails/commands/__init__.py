"""Sub-commands of ``charter``: one module per area, each with ``register(subparsers)``."""
