"""genadapt.benchmarks: the paper's Table 3 timings, the host-to-host pipeline and HTTP load."""
