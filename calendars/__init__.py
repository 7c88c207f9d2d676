"""Calendar providers, aliases, space<->calendar bindings, user tokens and the sync engine."""
