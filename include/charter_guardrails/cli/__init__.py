"""The ``charter`` command: :mod:`.main` builds the parser; every other module is one area, with
``register(subparsers)``.
"""
