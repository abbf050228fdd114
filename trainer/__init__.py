"""genadapt.trainer: G, D, the D → G → F/C iteration and the run folder (training only)."""
