"""A run's live state, without Textual: the one fold of its events and the views built on it."""
