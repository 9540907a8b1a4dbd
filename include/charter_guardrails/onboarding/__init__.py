"""Drafting a new use case from a team's data file (``charter init``).

:mod:`.profile` reads and profiles the file, :mod:`.skeleton` drafts the policy YAML with TODO markers for what only
a person can declare, :mod:`.suite_draft` drafts the Great Expectations suites, :mod:`.draft` ties them together
and writes every file or none.
"""
