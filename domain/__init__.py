"""Pure domain models and rules shared by workflows and activities: no I/O here."""
