"""Composition: where keyward's workflows, activities and library are put together.

The only package under ``keyward`` that may import ``workflows`` and ``activities``; the
entry scripts, tests and benchmarks import it, nothing in the library does
(docs/architecture.md).
"""
