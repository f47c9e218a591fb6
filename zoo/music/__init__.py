"""Bach chorales: harmonize a melody or compose four voices (Coconet-style, in-graph Gibbs sampling)."""
