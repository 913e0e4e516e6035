"""Google's IFEval verifiers (Apache-2.0), vendored for the instruction-following example."""
