"""toolgrad.dataset.runner."""
