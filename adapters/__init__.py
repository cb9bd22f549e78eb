"""Adapters: the only code that knows a wire protocol (SQL, SCIM, SendGrid)."""
