"""Microsoft Teams: digests through a Workflows webhook, as Adaptive Cards."""
