"""simulator.datagen.generate."""
