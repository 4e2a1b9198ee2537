"""cux's own benchmarks; run by hand, never as timed tests (see README.md here)."""
