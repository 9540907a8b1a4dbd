"""The shared contracts: results, the policy, settings, keys, errors and the check catalogue."""
