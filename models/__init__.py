"""Network definitions and the registry that maps a name to a constructor."""
