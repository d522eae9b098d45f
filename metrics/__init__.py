"""Pure functions from energy data to the figures policy asks for. No I/O, no logging."""
