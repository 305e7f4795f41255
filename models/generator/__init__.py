"""Gap filling: a small fill-in-the-middle transformer over bar/position note tokens."""
