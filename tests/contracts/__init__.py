"""Reusable contract tests: a base class of tests every implementation of a seam must pass
(``SystemContract``, ``ExecutorContract``), subclassed once per implementation in a
``test_*`` module, and the small echo systems they run."""
