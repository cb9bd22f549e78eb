"""Activities act: each is a thin, named step over an adapter."""
