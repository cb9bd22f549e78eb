"""Email rendering: templates, dates in the recipient's time zone, calendar invitations, previews."""
