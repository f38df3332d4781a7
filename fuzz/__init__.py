"""Coverage-guided fuzzing (atheris) of the readers that take untrusted input; see ``fuzz/README.md``."""
