"""The core's command-line tools: genadapt-predict, genadapt-eval and genadapt-data."""
