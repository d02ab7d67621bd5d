"""toolgrad.loop.sample."""
