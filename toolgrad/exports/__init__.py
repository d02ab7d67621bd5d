"""toolgrad.exports."""
